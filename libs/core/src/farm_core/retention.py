"""The hourly loop that deletes what is older than a retention of so many days (0: kept for ever).

Auth's audit records and the scheduler's ended tasks both use it: each round
works out the cutoff from an injectable clock (tests move it instead of waiting)
and hands it to the service's own purge.
"""

import datetime as dt
from collections.abc import Awaitable, Callable

from farm_core.db import utcnow
from farm_core.periodic import Periodic

MAX_RETENTION_DAYS = 36_500
"""The longest retention a setting may ask for (a hundred years; 0 keeps for ever): the
cutoff of a longer one falls before the year 1 and the sweep would fail at every round."""
RETENTION_CHECK_SECONDS = 3600.0
"""How often a retention purge runs (and once at start)."""

Clock = Callable[[], dt.datetime]


def retention_cutoff(days: int, clock: Clock = utcnow) -> dt.datetime:
    """What ended before this instant is past a retention of `days`."""
    return clock() - dt.timedelta(days=days)


def retention_loop(
    name: str,
    purge: Callable[[dt.datetime], Awaitable[object]],
    days: int,
    *,
    survives: tuple[type[Exception], ...],
    clock: Clock = utcnow,
    interval_seconds: float = RETENTION_CHECK_SECONDS,
    retry_seconds: float | None = None,
) -> Periodic | None:
    """A loop that calls `purge(cutoff)` every interval, at once first; None when `days` is 0.

    With `retry_seconds`, a purge that failed is tried again that soon (Periodic's backoff).
    """
    if not days:
        return None

    async def round_of_purge() -> None:
        await purge(retention_cutoff(days, clock))

    return Periodic(
        name,
        round_of_purge,
        interval_seconds,
        survives=survives,
        first_round_at_once=True,
        retry_seconds=retry_seconds,
    )
