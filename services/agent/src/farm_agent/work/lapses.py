"""Whether JetStream may have redelivered a task message while this agent held it.

JetStream redelivers a message whose delivery went `ack_wait` without an ack or an
in-progress ack, and it takes any later ack, nak or term as the message's, whichever
delivery sent it. So a delivery that may have lapsed must not be answered: its answer
would settle (or reschedule) the newer delivery another agent holds.
"""

import time
from collections.abc import Callable

Clock = Callable[[], float]

# Linux's; elsewhere (a developer's laptop) the monotonic clock, which stops in a suspend.
_BOOTTIME: int = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


def boottime() -> float:
    """Seconds on a clock that keeps running while the process or its machine is suspended.

    CLOCK_MONOTONIC stops during a VM or host suspend; the server's ack wait does not.
    """
    return time.clock_gettime(_BOOTTIME)


def in_progress_interval(ack_wait_seconds: float, in_progress_seconds: float) -> float:
    """How often an in-progress ack goes: as set, but at most a third of the ack wait.

    So a healthy agent's ticks stay well inside the lapse bound.
    """
    return min(in_progress_seconds, ack_wait_seconds / 3)


def lapse_bound(ack_wait_seconds: float, in_progress_seconds: float) -> float:
    """The gap without progress reaching NATS past which a delivery counts as lapsed.

    The ack wait less a margin of one in-progress interval, for the time an ack spends
    on its way and a tick that is a little late.
    """
    return ack_wait_seconds - in_progress_interval(ack_wait_seconds, in_progress_seconds)


class ProgressWatch:
    """The longest stretch of a delivery without an in-progress ack that reached NATS."""

    def __init__(self, bound_seconds: float, clock: Clock = boottime) -> None:
        self._bound_seconds = bound_seconds
        self._clock = clock
        # Taking the delivery starts the server's ack wait as an in-progress ack does.
        self._last_reached = clock()
        self._longest_gap = 0.0

    def reached(self) -> None:
        """Notes an in-progress ack handed to a connected NATS client just now."""
        now = self._clock()
        self._longest_gap = max(self._longest_gap, now - self._last_reached)
        self._last_reached = now

    def lapse(self) -> float | None:
        """The longest gap so far (up to now) if it reached the bound; None while it did not."""
        gap = max(self._longest_gap, self._clock() - self._last_reached)
        return gap if gap >= self._bound_seconds else None
