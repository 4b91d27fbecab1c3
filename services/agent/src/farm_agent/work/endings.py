"""The tasks whose attempt here ended lately: a heartbeat lists them as ending (holders.py).

A plain end is listed for one heartbeat interval, long enough for a beat to tell it.
An end reported after the attempt's delivery lapsed (its final event flagged
`redelivered`) is listed longer, and holds a redelivery on this agent too: JetStream
brings that message again, and until the scheduler has applied the event and marked
the task ended, nothing else tells the redelivery that the task is done. It stays
until the mark is seen here (its cancel notice) or `awaiting_mark_seconds` pass.
"""

import time
from collections.abc import Callable

from cachetools import TTLCache

ENDED_KEPT = 65536
"""Bounds the ended tasks a heartbeat lists (ending_task_ids)."""


class RecentEnds:
    """Ids of the tasks whose attempt here ended lately, each kept as long as its end needs."""

    def __init__(
        self,
        listed_seconds: float,
        awaiting_mark_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._plain: TTLCache[str, None] = TTLCache(ENDED_KEPT, listed_seconds, clock)
        self._awaiting_mark: TTLCache[str, None] = TTLCache(
            ENDED_KEPT, awaiting_mark_seconds, clock
        )

    def note(self, task_id: str, *, end_mark_due: bool) -> None:
        """Notes an attempt's end; `end_mark_due`: it lapsed and its end went out flagged."""
        self._plain[task_id] = None
        if end_mark_due:
            self._awaiting_mark[task_id] = None

    def mark_seen(self, task_id: str) -> None:
        """The scheduler marked the task ended: a redelivery now reads the mark."""
        self._awaiting_mark.pop(task_id, None)

    def awaits_mark(self, task_id: str) -> bool:
        """Whether an attempt here ended after a lapse and the task's end mark is not seen yet."""
        return task_id in self._awaiting_mark

    @property
    def listed(self) -> list[str]:
        """The ending tasks a heartbeat lists now (TTLCache leaves out what has expired)."""
        return list(dict.fromkeys([*self._plain, *self._awaiting_mark]))
