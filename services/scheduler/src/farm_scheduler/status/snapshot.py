"""One reading of the whole farm: agents, queues, recent tasks, breakers, open sessions."""

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import nats.errors
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine

from farm.admin.v1 import admin_pb2
from farm_core.breakers import BreakerEntry
from farm_core.db import utcnow
from farm_core.errors import Unavailable
from farm_scheduler.fleet import Fleet
from farm_scheduler.sessions.store import SessionStore
from farm_scheduler.status.breakers import read_breakers
from farm_scheduler.status.queues import QueueDepth, read_queues
from farm_scheduler.status.task_counts import TaskCounts, count_tasks

Read = TypeVar("Read")


@dataclass(frozen=True)
class FleetSnapshot:
    """The farm at `read_time`, every tenant's."""

    read_time: dt.datetime
    agents: list[admin_pb2.Agent]
    queues: list[QueueDepth]
    tasks: TaskCounts
    breakers: list[BreakerEntry]
    open_sessions: int


class FleetReader:
    """Reads a FleetSnapshot from the heartbeats, JetStream, the breakers' bucket and SQL."""

    def __init__(
        self,
        fleet: Fleet,
        js: JetStreamContext,
        engine: AsyncEngine,
        sessions: SessionStore,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._fleet = fleet
        self._js = js
        self._engine = engine
        self._sessions = sessions
        self._clock = clock

    async def read(self, window: dt.timedelta) -> FleetSnapshot:
        """The farm now, with the tasks that ended within `window`; Unavailable if NATS is not."""
        now = self._clock()
        agents, queues, breakers, tasks, sessions = await asyncio.gather(
            self._fleet.agents(),
            _from_nats("the task queues", read_queues(self._js, now)),
            _from_nats("the circuit breakers", read_breakers(self._js)),
            count_tasks(self._engine, now - window),
            self._sessions.active(),
        )
        return FleetSnapshot(now, agents, queues, tasks, breakers, len(sessions))


async def _from_nats(what: str, reading: Awaitable[Read]) -> Read:
    try:
        return await reading
    except (nats.errors.Error, TimeoutError) as error:
        raise Unavailable(f"{what} cannot be read: {error}") from error
