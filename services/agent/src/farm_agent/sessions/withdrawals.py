"""Sessions whose opening the scheduler gave up on, remembered for a while.

The scheduler publishes a close for a session it stopped waiting for (its
CreateSession was cancelled, or this agent did not answer in time). The close may
come while the browser is still opening, or even before the open order is read
(each order subject is read on its own), so the id is kept: an opening that ends
finds it here and closes its browser; an open order that comes later is refused.
"""

import collections
import time
from collections.abc import Callable

KEEP_SECONDS = 300.0
"""How long a withdrawn id is remembered: longer than any open order waits."""
MAX_KEPT = 4096
"""The most withdrawn ids remembered at once (the oldest go first)."""


class Withdrawals:
    """Session ids (with their tenant) whose opening was withdrawn lately."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        keep_seconds: float = KEEP_SECONDS,
        max_kept: int = MAX_KEPT,
    ) -> None:
        self._clock = clock
        self._keep_seconds = keep_seconds
        self._max_kept = max_kept
        self._until: collections.OrderedDict[tuple[str, str], float] = collections.OrderedDict()

    def add(self, session_id: str, tenant: str) -> None:
        """Remembers that the tenant's session `session_id` is not to be opened."""
        self._prune()
        key = (session_id, tenant)
        self._until.pop(key, None)
        self._until[key] = self._clock() + self._keep_seconds
        while len(self._until) > self._max_kept:
            self._until.popitem(last=False)

    def __contains__(self, key: tuple[str, str]) -> bool:
        """Whether (session_id, tenant) was withdrawn lately."""
        self._prune()
        return key in self._until

    def _prune(self) -> None:
        now = self._clock()
        while self._until:
            key, until = next(iter(self._until.items()))
            if until > now:
                return
            del self._until[key]
