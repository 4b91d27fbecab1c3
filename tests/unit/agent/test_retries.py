"""Retries: backoff with jitter, bounded attempts, and the deadline."""

import datetime as dt

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from farm.tasks.v1 import tasks_pb2
from farm_agent.errors import TaskFailure
from farm_agent.work.retries import (
    Backoff,
    GiveUp,
    Retry,
    attempt_timeout_ms,
    deadline_of,
    deadline_passed,
    max_attempts_of,
    plan_after_failure,
)
from farm_core.task_errors import ErrorCode

BACKOFF = Backoff(base_seconds=1.0, max_seconds=60.0)
NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
TIMEOUT = TaskFailure(ErrorCode.TIMEOUT, "url: navigation timed out")


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    middle = 0.5  # jitter 0.5 is the factor 1.0
    assert [BACKOFF.delay(attempt, middle) for attempt in range(1, 9)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
        60.0,
        60.0,
    ]


def test_jitter_scales_the_delay_between_half_and_one_and_a_half() -> None:
    assert BACKOFF.delay(3, 0.0) == 2.0
    assert BACKOFF.delay(3, 1.0) == 6.0


@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    jitter=st.floats(min_value=0, max_value=1),
    base=st.floats(min_value=0.01, max_value=10),
    cap=st.floats(min_value=0.01, max_value=600),
)
def test_backoff_stays_within_its_bounds(
    attempt: int, jitter: float, base: float, cap: float
) -> None:
    delay = Backoff(base, cap).delay(attempt, jitter)
    expected = min(cap, base * 2.0 ** min(attempt - 1, 62))
    assert 0.5 * expected <= delay <= 1.5 * expected
    assert delay <= 1.5 * cap


def test_a_retryable_failure_with_attempts_left_is_retried_after_the_backoff() -> None:
    plan = plan_after_failure(TIMEOUT, 2, 3, NOW, None, BACKOFF, 0.5)
    assert plan == Retry(2.0, NOW + dt.timedelta(seconds=2))


def test_the_last_attempt_fails_with_its_own_error() -> None:
    plan = plan_after_failure(TIMEOUT, 3, 3, NOW, None, BACKOFF, 0.5)
    assert plan == GiveUp(TIMEOUT)


def test_a_final_failure_is_not_retried() -> None:
    failure = TaskFailure(ErrorCode.SELECTOR_NOT_FOUND, "steps[0].click: no element")
    assert plan_after_failure(failure, 1, 3, NOW, None, BACKOFF, 0.5) == GiveUp(failure)


def test_a_retry_after_the_deadline_fails_at_once_with_the_attempts_error_saying_so() -> None:
    deadline = NOW + dt.timedelta(seconds=1.5)
    plan = plan_after_failure(TIMEOUT, 2, 3, NOW, deadline, BACKOFF, 0.5)
    assert isinstance(plan, GiveUp)
    assert (plan.failure.code, plan.failure.retryable) == (ErrorCode.TIMEOUT, True)
    assert plan.failure.message == (
        "url: navigation timed out; not retried: the retry after 2.0 s of backoff would "
        "start 0.5 s after the deadline 2030-01-01T12:00:01.500000+00:00"
    )


def test_a_retry_that_would_start_too_close_to_the_deadline_is_not_made() -> None:
    failure = TaskFailure(ErrorCode.HTTP_ERROR, "url: HTTP 503", http_status=503)
    deadline = NOW + dt.timedelta(seconds=2.5)
    plan = plan_after_failure(failure, 2, 3, NOW, deadline, BACKOFF, 0.5)
    assert isinstance(plan, GiveUp)
    assert (plan.failure.code, plan.failure.http_status) == (ErrorCode.HTTP_ERROR, 503)
    assert "would start only 0.5 s before the deadline" in plan.failure.message


def test_an_attempt_the_deadline_cut_short_fails_with_deadline_exceeded_naming_its_error() -> None:
    deadline = NOW + dt.timedelta(seconds=60)
    plan = plan_after_failure(
        TIMEOUT, 1, 3, NOW, deadline, BACKOFF, 0.5, cut_short_by_deadline=True
    )
    assert isinstance(plan, GiveUp)
    assert (plan.failure.code, plan.failure.retryable) == (ErrorCode.DEADLINE_EXCEEDED, False)
    assert "TIMEOUT" in plan.failure.message


def test_a_retry_before_the_deadline_goes_ahead() -> None:
    deadline = NOW + dt.timedelta(seconds=10)
    assert isinstance(plan_after_failure(TIMEOUT, 1, 3, NOW, deadline, BACKOFF, 0.5), Retry)


def spec_with_deadline(seconds_from_now: float | None, timeout_ms: int = 0) -> tasks_pb2.TaskSpec:
    spec = tasks_pb2.TaskSpec(url="http://example.test/", timeout_ms=timeout_ms)
    if seconds_from_now is not None:
        stamp = Timestamp()
        stamp.FromDatetime(NOW + dt.timedelta(seconds=seconds_from_now))
        spec.deadline.CopyFrom(stamp)
    return spec


def test_an_attempt_gets_its_timeout_or_what_is_left_before_the_deadline() -> None:
    assert attempt_timeout_ms(spec_with_deadline(None, 20_000), NOW) == 20_000
    assert attempt_timeout_ms(spec_with_deadline(None), NOW) == 30_000
    assert attempt_timeout_ms(spec_with_deadline(5, 20_000), NOW) == 5_000
    assert attempt_timeout_ms(spec_with_deadline(60, 20_000), NOW) == 20_000


def test_deadline_reads_as_an_aware_time_or_none() -> None:
    assert deadline_of(spec_with_deadline(None)) is None
    assert deadline_of(spec_with_deadline(3)) == NOW + dt.timedelta(seconds=3)


def test_a_passed_deadline_is_a_final_failure_naming_the_field() -> None:
    failure = deadline_passed(NOW - dt.timedelta(seconds=2), NOW)
    assert failure.code is ErrorCode.DEADLINE_EXCEEDED
    assert not failure.retryable
    assert failure.message.startswith("deadline: ")


@pytest.mark.parametrize(("given", "expected"), [(0, 3), (1, 1), (5, 5)])
def test_max_attempts_defaults_to_three(given: int, expected: int) -> None:
    assert max_attempts_of(tasks_pb2.TaskSpec(max_attempts=given)) == expected


def test_an_attempt_the_deadline_cut_short_is_not_retried_after_its_timeout() -> None:
    deadline = NOW + dt.timedelta(seconds=30)
    plan = plan_after_failure(
        TIMEOUT, 1, 3, NOW, deadline, BACKOFF, 0.5, cut_short_by_deadline=True
    )
    assert isinstance(plan, GiveUp)
    assert plan.failure.code is ErrorCode.DEADLINE_EXCEEDED
