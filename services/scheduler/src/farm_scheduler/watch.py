"""Follows a task's state for WatchTask and RunTask, waking up as soon as it may have changed.

Every replica that commits a change to a task announces it: in-process, and on
the core NATS subject `scheduler.changed.<task_id>` for the other replicas.
Watchers also wake on the agents' events (`events.tasks.<task_id>`), which may
arrive a moment before the change is committed; then the announcement follows.
Should NATS be unreachable, watchers still re-read the task every `poll_seconds`.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from farm_core.queue import event_subject
from farm_scheduler.lifecycle import is_final
from farm_scheduler.records import TaskRecord

log = logging.getLogger(__name__)


def changed_subject(task_id: str) -> str:
    """The core NATS subject on which the scheduler's replicas announce a task's change."""
    return f"scheduler.changed.{task_id}"


class TaskWatch:
    """Who waits for which task, and the signals that wake them."""

    def __init__(self, poll_seconds: float) -> None:
        self._poll_seconds = poll_seconds
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._nc: Client | None = None

    def attach(self, nc: Client) -> None:
        """Announces changes over NATS, and hears those of agents and other replicas."""
        self._nc = nc

    async def announce(self, task_id: str) -> None:
        """Wakes everyone following `task_id`, here and in other replicas: it has changed."""
        for changed in self._waiters.get(task_id, ()):
            changed.set()
        if self._nc is None:
            return
        try:
            await self._nc.publish(changed_subject(task_id))
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
        async with self._watching(task_id) as changed:
            current = await read()
            yield current
            while not is_final(current.state.status):
                wait_seconds = self._poll_seconds
                if deadline is not None:
                    wait_seconds = min(wait_seconds, deadline - loop.time())
                    if wait_seconds <= 0:
                        return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), wait_seconds)
                # Cleared before reading: a change after this read wakes the next wait.
                changed.clear()
                latest = await read()
                if (latest.state.status, latest.state.attempts) != (
                    current.state.status,
                    current.state.attempts,
                ):
                    yield latest
                current = latest

    @contextlib.asynccontextmanager
    async def _watching(self, task_id: str) -> AsyncIterator[asyncio.Event]:
        changed = asyncio.Event()
        self._waiters[task_id].add(changed)
        subscriptions: list[Subscription] = []
        try:
            if self._nc is not None:
                subscriptions = await _subscribe(self._nc, task_id, changed)
            yield changed
        finally:
            waiters = self._waiters[task_id]
            waiters.discard(changed)
            if not waiters:
                del self._waiters[task_id]
            for subscription in subscriptions:
                # A closed connection has dropped its subscriptions already.
                with contextlib.suppress(nats.errors.Error):
                    await subscription.unsubscribe()


async def _subscribe(nc: Client, task_id: str, changed: asyncio.Event) -> list[Subscription]:
    async def wake(_message: Msg) -> None:
        changed.set()

    subscriptions: list[Subscription] = []
    try:
        for subject in (changed_subject(task_id), event_subject(task_id)):
            subscriptions.append(await nc.subscribe(subject, cb=wake))
    except nats.errors.Error as error:
        log.warning("watching task %s by polling only: NATS refused: %s", task_id, error)
    return subscriptions
