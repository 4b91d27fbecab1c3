"""A callback's delivery attempts, the status they add up to, and when to try again."""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from farm.tasks.v1 import tasks_pb2
from farm_core.backoff import doubling_delay
from farm_core.timestamps import to_timestamp


@dataclass(frozen=True)
class CallbackAttempt:
    """One delivery attempt: its number, when it was sent, the receiver's status, the error."""

    number: int
    time: dt.datetime
    http_status: int = 0
    """0 when there was no answer."""
    error: str = ""
    """Empty when it was delivered."""

    @property
    def delivered(self) -> bool:
        """Whether the receiver took it (a 2xx answer)."""
        return not self.error

    def to_proto(self) -> tasks_pb2.CallbackAttempt:
        """The API's view of the attempt."""
        return tasks_pb2.CallbackAttempt(
            attempt=self.number,
            time=to_timestamp(self.time),
            http_status=self.http_status,
            error=self.error,
        )


@dataclass(frozen=True)
class RetryPolicy:
    """How callbacks are retried: doubling waits from `first`, capped, within a window."""

    first_seconds: float = 1.0
    max_seconds: float = 300.0
    window_seconds: float = 3600.0

    def next_time(
        self, failures: int, finish_time: dt.datetime, now: dt.datetime
    ) -> dt.datetime | None:
        """When to try again after `failures` failures in a row; None: give up.

        The window starts when the task ended; no attempt starts after it closed.
        """
        wait = doubling_delay(self.first_seconds, self.max_seconds, failures)
        then = now + dt.timedelta(seconds=wait)
        if then > finish_time + dt.timedelta(seconds=self.window_seconds):
            return None
        return then


def callback_status(
    url: str, pending: bool, attempts: Sequence[CallbackAttempt]
) -> "tasks_pb2.CallbackStatus.ValueType":
    """Where the callback stands: none, pending, delivered (by the latest attempt) or failed."""
    if not url:
        return tasks_pb2.CALLBACK_STATUS_UNSPECIFIED
    if pending:
        return tasks_pb2.CALLBACK_STATUS_PENDING
    if attempts and attempts[-1].delivered:
        return tasks_pb2.CALLBACK_STATUS_DELIVERED
    return tasks_pb2.CALLBACK_STATUS_FAILED
