"""How long RunTask waits: each attempt's time limit and the queue allowance, up to the deadline."""

import datetime as dt

from farm.tasks.v1 import tasks_pb2
from farm_core.timestamps import to_timestamp
from farm_scheduler.api import run_wait_seconds

NOW = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)


def spec(deadline_seconds: float | None = None) -> tasks_pb2.TaskSpec:
    task_spec = tasks_pb2.TaskSpec(max_attempts=3, timeout_ms=10000)
    if deadline_seconds is not None:
        task_spec.deadline.CopyFrom(to_timestamp(NOW + dt.timedelta(seconds=deadline_seconds)))
    return task_spec


def test_run_task_waits_for_every_attempt_and_the_queue() -> None:
    assert run_wait_seconds(spec(), 60, 5, NOW) == 3 * 10 + 60


def test_run_task_waits_no_longer_than_the_deadline_and_its_grace() -> None:
    assert run_wait_seconds(spec(deadline_seconds=20), 60, 5, NOW) == 25


def test_far_deadline_does_not_lengthen_the_wait() -> None:
    assert run_wait_seconds(spec(deadline_seconds=3600), 60, 5, NOW) == 90


def test_passed_deadline_means_no_wait() -> None:
    assert run_wait_seconds(spec(deadline_seconds=-60), 60, 5, NOW) == 0
