"""How long `farm task run` waits for RunTask: the task's own time and a margin."""

from datetime import UTC, datetime, timedelta

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_cli.commands.run_wait import (
    ANSWER_MARGIN_VARIABLE,
    RunTaskNotAnswered,
    answer_margin_seconds,
    run_wait_seconds,
)
from farm_cli.console import UsageError

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def spec(max_attempts: int = 0, timeout_ms: int = 0) -> tasks_pb2.TaskSpec:
    return tasks_pb2.TaskSpec(
        url="https://example.com", max_attempts=max_attempts, timeout_ms=timeout_ms
    )


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        # 3 attempts of 30 s (the defaults), 60 s for the queue, 15 s of margin.
        (spec(), 165.0),
        (spec(max_attempts=1, timeout_ms=10_000), 85.0),
        # Never past the edge's RunTask route.
        (spec(max_attempts=10, timeout_ms=60_000), 330.0),
    ],
    ids=["defaults", "one-short-attempt", "capped-at-the-edges-route"],
)
def test_the_wait_is_the_attempts_and_the_queue_and_a_margin(
    task: tasks_pb2.TaskSpec, expected: float
) -> None:
    assert run_wait_seconds(task, NOW) == expected


def test_a_deadline_ahead_ends_the_wait_5_s_past_it_and_the_margin() -> None:
    task = spec()
    task.deadline.FromDatetime(NOW + timedelta(seconds=2))
    assert run_wait_seconds(task, NOW) == 22.0


def test_a_deadline_passed_leaves_the_margin() -> None:
    task = spec()
    task.deadline.FromDatetime(NOW - timedelta(seconds=60))
    assert run_wait_seconds(task, NOW) == 15.0


def test_the_margin_is_the_variables_when_set() -> None:
    margin = answer_margin_seconds({ANSWER_MARGIN_VARIABLE: " 2.5 "})
    assert margin == 2.5
    assert run_wait_seconds(spec(max_attempts=1, timeout_ms=10_000), NOW, margin) == 72.5
    assert answer_margin_seconds({}) == 15.0


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_a_margin_that_is_no_number_of_seconds_is_refused_naming_the_variable(
    value: str,
) -> None:
    with pytest.raises(UsageError, match=f"{ANSWER_MARGIN_VARIABLE}='{value}'"):
        answer_margin_seconds({ANSWER_MARGIN_VARIABLE: value})


def test_the_message_of_a_run_not_answered_names_the_margin() -> None:
    assert "and 1.5 s more" in str(RunTaskNotAnswered(42, 1.5))
