"""Follows a task's state for WatchTask and RunTask, waking up as soon as it has changed.

Every replica that commits a change to a task announces it: in-process, with the
committed record, which its own watchers take without reading the task again; and on
the core NATS subject `scheduler.changed.<task_id>` for the other replicas, whose
watchers then read the task. Should NATS be unreachable, watchers still re-read the
task every `poll_seconds`.
"""

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from farm_core.errors import Unavailable
from farm_scheduler.lifecycle import is_final
from farm_scheduler.records import TaskRecord

log = logging.getLogger(__name__)

ORIGIN_HEADER = "Farm-Replica"
"""The header naming the replica that announced a change: it ignores its own."""


def changed_subject(task_id: str) -> str:
    """The core NATS subject on which the scheduler's replicas announce a task's change."""
    return f"scheduler.changed.{task_id}"


@dataclass(eq=False)
class _Watcher:
    """One follower of a task: woken on a change, with the newest record handed over."""

    changed: asyncio.Event = field(default_factory=asyncio.Event)
    handed: TaskRecord | None = None
    # Another replica changed the task: only a read sees its change.
    must_read: bool = False

    def hand(self, record: TaskRecord | None) -> None:
        if record is None:
            self.must_read = True
        elif self.handed is None or record.revision > self.handed.revision:
            self.handed = record
        self.changed.set()

    def take(self) -> TaskRecord | None:
        """The record handed over since the last take, or None if the task must be read."""
        record, must_read = self.handed, self.must_read
        self.handed, self.must_read = None, False
        self.changed.clear()
        return None if must_read else record


class TaskWatch:
    """Who waits for which task, and the signals that wake them."""

    def __init__(self, poll_seconds: float) -> None:
        self._poll_seconds = poll_seconds
        self._waiters: defaultdict[str, set[_Watcher]] = defaultdict(set)
        self._nc: Client | None = None
        self._origin = uuid.uuid4().hex
        self._stopping = False

    def attach(self, nc: Client) -> None:
        """Announces changes over NATS, and hears those of other replicas."""
        self._nc = nc

    def stop(self) -> None:
        """Ends every follow, now and to come, with Unavailable: this replica is stopping.

        A follow would otherwise run until the gRPC server's grace is over and be cut
        off with gRPC's bare "Cancelling all calls", the caller left without the task's
        id; and a replica that stops applies no more events, so the tasks it follows
        would not end here anyway.
        """
        self._stopping = True
        for watchers in self._waiters.values():
            for watcher in watchers:
                watcher.changed.set()

    async def announce(self, task_id: str, committed: TaskRecord | None = None) -> None:
        """Wakes everyone following `task_id`, here and in other replicas: it has changed.

        `committed` is the task as the change committed it; watchers here take it
        instead of reading the task (without it, they read).
        """
        for watcher in self._waiters.get(task_id, ()):
            watcher.hand(committed)
        if self._nc is None:
            return
        try:
            await self._nc.publish(changed_subject(task_id), headers={ORIGIN_HEADER: self._origin})
        except nats.errors.Error as error:
            # Other replicas' watchers still see the change at their next poll.
            log.warning("announcing the change of task %s failed: %s", task_id, error)

    async def follow(
        self,
        task_id: str,
        read: Callable[[], Awaitable[TaskRecord]],
        deadline: float | None = None,
    ) -> AsyncGenerator[TaskRecord, None]:
        """Yields the task as it stands, then again each time its state changes.

        Ends after a final state, or once the event loop's clock passes `deadline`.
        Close the generator (contextlib.aclosing) when leaving it early.
        """
        loop = asyncio.get_running_loop()
        async with self._watching(task_id) as watcher:
            current = await read()
            yield current
            while not is_final(current.state.status):
                self._refuse_if_stopping(task_id)
                wait_seconds = self._poll_seconds
                if deadline is not None:
                    wait_seconds = min(wait_seconds, deadline - loop.time())
                    if wait_seconds <= 0:
                        return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watcher.changed.wait(), wait_seconds)
                self._refuse_if_stopping(task_id)
                # Taken before reading: a change after this read wakes the next wait.
                handed = watcher.take()
                latest = await read() if handed is None else handed
                if latest.revision < current.revision:
                    continue
                if _shown(latest) != _shown(current):
                    yield latest
                current = latest

    def _refuse_if_stopping(self, task_id: str) -> None:
        if self._stopping:
            raise Unavailable(
                f"this scheduler replica is stopping; task {task_id} goes on without this "
                "call: follow it with GetTask or WatchTask (another replica answers, or this "
                "one once it is back), or make the call again with the same idempotencyKey, "
                "which returns the same task"
            )

    @contextlib.asynccontextmanager
    async def _watching(self, task_id: str) -> AsyncIterator[_Watcher]:
        watcher = _Watcher()
        self._waiters[task_id].add(watcher)
        subscription: Subscription | None = None
        try:
            if self._nc is not None:
                subscription = await self._subscribe(self._nc, task_id, watcher)
            yield watcher
        finally:
            waiters = self._waiters[task_id]
            waiters.discard(watcher)
            if not waiters:
                del self._waiters[task_id]
            if subscription is not None:
                # A closed connection has dropped its subscriptions already.
                with contextlib.suppress(nats.errors.Error):
                    await subscription.unsubscribe()

    async def _subscribe(self, nc: Client, task_id: str, watcher: _Watcher) -> Subscription | None:
        async def wake(message: Msg) -> None:
            # This replica's own announcements reached its watchers with the record already.
            if (message.headers or {}).get(ORIGIN_HEADER) != self._origin:
                watcher.hand(None)

        try:
            return await nc.subscribe(changed_subject(task_id), cb=wake)
        except nats.errors.Error as error:
            log.warning("watching task %s by polling only: NATS refused: %s", task_id, error)
            return None


def _shown(record: TaskRecord) -> tuple[int, int, str]:
    """What a watcher hears a change of: the status, the attempt, what the attempt waits for."""
    state = record.state
    return state.status, state.attempts, state.status_message
