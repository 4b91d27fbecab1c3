"""The tasks whose attempt on this agent ended lately, for the heartbeat's `ending_task_ids`.

The heartbeat drops a task as soon as its attempt ends, before the scheduler may
have applied its final event: a redelivery on another agent waits for the tasks
listed here as for running ones, as it did when beats came only every interval.
"""

import time
from collections.abc import Callable


class RecentEnds:
    """Task ids whose attempt ended within the last `keep_seconds`."""

    def __init__(self, keep_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._keep_seconds = keep_seconds
        self._clock = clock
        self._ended: dict[str, float] = {}

    def add(self, task_id: str) -> None:
        """Notes that an attempt of the task ended now."""
        self._ended.pop(task_id, None)
        self._ended[task_id] = self._clock()

    def ids(self) -> list[str]:
        """The tasks whose attempt ended within `keep_seconds`, oldest end first."""
        since = self._clock() - self._keep_seconds
        for task_id, ended in list(self._ended.items()):
            if ended >= since:
                break
            del self._ended[task_id]
        return list(self._ended)
