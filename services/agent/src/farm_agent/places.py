"""The agent's places: each running task and each open session takes one.

Sessions and tasks share them so that together they never overcommit the machine.
A session waiting for a place goes first: the intake takes no new task while one
waits, so a steady flow of tasks cannot keep a session out.
"""

import asyncio
from collections.abc import Callable


class Places:
    """`total` places, taken by tasks and sessions."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.tasks = 0
        self.sessions = 0
        self._sessions_waiting = 0
        self._changed = asyncio.Condition()
        # Called after a task's place is taken or freed (the agent beats its heartbeat
        # soon). Not for a session's: the session manager tells those, once the session
        # shows in (or has left) its list, so that one beat tells each open and close.
        self.on_change: Callable[[], None] | None = None

    @property
    def sessions_waiting(self) -> int:
        """Sessions waiting for a place now."""
        return self._sessions_waiting

    @property
    def free(self) -> int:
        """Places neither a task nor a session holds."""
        return self.total - self.tasks - self.sessions

    def task_may_start(self) -> bool:
        """Whether a new task may take a place now (no session waits for one)."""
        return self.free > 0 and self._sessions_waiting == 0

    def try_take_for_task(self) -> bool:
        """Takes a place for a task now if one may start; False if none is free."""
        if not self.task_may_start():
            return False
        self.tasks += 1
        self._tell_change()
        return True

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Waits until `predicate()` holds; it is checked whenever a place changes hands."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def notify(self) -> None:
        """Wakes the waiters to check their predicates again (something else changed)."""
        async with self._changed:
            self._changed.notify_all()

    async def take_for_session(self, wait_seconds: float) -> bool:
        """Takes a place for a session within `wait_seconds`; False if none came free."""
        async with self._changed:
            self._sessions_waiting += 1
            try:
                async with asyncio.timeout(wait_seconds):
                    await self._changed.wait_for(lambda: self.free > 0)
            except TimeoutError:
                return False
            finally:
                self._sessions_waiting -= 1
                self._changed.notify_all()
            self.sessions += 1
            return True

    async def give_back(self, *, session: bool) -> None:
        """Frees a task's or a session's place."""
        async with self._changed:
            if session:
                self.sessions -= 1
            else:
                self.tasks -= 1
            self._changed.notify_all()
        if not session:
            self._tell_change()

    def _tell_change(self) -> None:
        if self.on_change is not None:
            self.on_change()
