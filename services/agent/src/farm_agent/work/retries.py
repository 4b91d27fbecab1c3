"""Whether and when a failed attempt is tried again.

Attempts are bounded by the task's maxAttempts, retries wait an exponential backoff
with jitter, and nothing starts after the task's deadline.
"""

import datetime as dt
from dataclasses import dataclass

from farm.tasks.v1 import tasks_pb2
from farm_agent.errors import TaskFailure
from farm_core.backoff import doubling_delay
from farm_core.task_defaults import DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT_MS
from farm_core.task_errors import ErrorCode

MIN_RETRY_SECONDS = 1.0
"""The least time before the deadline that makes a retry worth starting (the least timeoutMs)."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: base * 2^(attempt-1), capped, times a random factor in [0.5, 1.5]."""

    base_seconds: float
    max_seconds: float

    def delay(self, attempt: int, jitter: float) -> float:
        """The delay after failed attempt `attempt` (from 1); `jitter` in [0, 1] sets the factor."""
        capped = doubling_delay(self.base_seconds, self.max_seconds, attempt)
        return capped * (0.5 + min(max(jitter, 0.0), 1.0))


@dataclass(frozen=True)
class Retry:
    """Hand the task back: it is offered again after `delay_seconds`, at `retry_time`."""

    delay_seconds: float
    retry_time: dt.datetime


@dataclass(frozen=True)
class GiveUp:
    """End the task FAILED with `failure`."""

    failure: TaskFailure


def plan_after_failure(
    failure: TaskFailure,
    attempt: int,
    max_attempts: int,
    now: dt.datetime,
    deadline: dt.datetime | None,
    backoff: Backoff,
    jitter: float,
    *,
    cut_short_by_deadline: bool = False,
) -> Retry | GiveUp:
    """What follows a failed attempt: a retry, or the task fails.

    A retry needs a retryable failure, an attempt left, and a retry time at least
    MIN_RETRY_SECONDS before the deadline. A retry the deadline leaves no time for
    fails the task at once with the attempt's own error, which says so; an attempt
    that ran out of time because the deadline cut it short fails DEADLINE_EXCEEDED.
    """
    if not failure.retryable or attempt >= max_attempts:
        return GiveUp(failure)
    delay = backoff.delay(attempt, jitter)
    retry_time = now + dt.timedelta(seconds=delay)
    if deadline is None:
        return Retry(delay, retry_time)
    if failure.code is ErrorCode.TIMEOUT and cut_short_by_deadline:
        return GiveUp(
            TaskFailure(
                ErrorCode.DEADLINE_EXCEEDED,
                f"attempt {attempt} failed ({failure.code}: {failure.message}) and the "
                f"deadline {deadline.isoformat()} leaves no time for another attempt",
            )
        )
    left = (deadline - retry_time).total_seconds()
    if left < MIN_RETRY_SECONDS:
        return GiveUp(
            TaskFailure(
                failure.code,
                f"{failure.message}; not retried: the retry after {delay:.1f} s of backoff "
                f"would start {_time_left(left)} the deadline {deadline.isoformat()}",
                http_status=failure.http_status,
                retryable=failure.retryable,
            )
        )
    return Retry(delay, retry_time)


def _time_left(seconds: float) -> str:
    """How a retry's start stands to the deadline, in words."""
    if seconds <= 0:
        return f"{-seconds:.1f} s after"
    return f"only {seconds:.1f} s before"


def max_attempts_of(spec: tasks_pb2.TaskSpec) -> int:
    """The task's maxAttempts, or the default when it is unset."""
    return spec.max_attempts if spec.max_attempts > 0 else DEFAULT_MAX_ATTEMPTS


def deadline_of(spec: tasks_pb2.TaskSpec) -> dt.datetime | None:
    """The task's deadline as an aware UTC datetime; None when it has none."""
    if not spec.HasField("deadline"):
        return None
    return spec.deadline.ToDatetime(tzinfo=dt.UTC)


def deadline_passed(deadline: dt.datetime, now: dt.datetime) -> TaskFailure:
    """The failure of a task delivered after its deadline: it is not started."""
    late = (now - deadline).total_seconds()
    return TaskFailure(
        ErrorCode.DEADLINE_EXCEEDED,
        f"deadline: {deadline.isoformat()} passed {late:.1f} s before the task could start",
    )


def attempt_timeout_ms(spec: tasks_pb2.TaskSpec, now: dt.datetime) -> int:
    """The attempt's time limit: the task's timeoutMs, cut short by its deadline."""
    timeout_ms = spec.timeout_ms or DEFAULT_TIMEOUT_MS
    deadline = deadline_of(spec)
    if deadline is None:
        return timeout_ms
    left_ms = int((deadline - now).total_seconds() * 1000)
    return max(1, min(timeout_ms, left_ms))
