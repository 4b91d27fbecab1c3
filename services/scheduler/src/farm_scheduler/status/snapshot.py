"""One reading of the whole farm: agents, queues, recent tasks, breakers, open sessions."""

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

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
        nats_servers: str,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._fleet = fleet
        self._js = js
        self._engine = engine
        self._sessions = sessions
        # Named when NATS fails a read: the operator learns which servers to look at.
        self._nats_servers = nats_servers
        self._clock = clock

    async def read(self, window: dt.timedelta) -> FleetSnapshot:
        """The farm now, with the tasks that ended within `window`; Unavailable if NATS is not."""
        now = self._clock()
        (agents, queues, breakers), tasks, sessions = await asyncio.gather(
            self._from_nats(now),
            count_tasks(self._engine, now - window),
            self._sessions.active(),
        )
        return FleetSnapshot(now, agents, queues, tasks, breakers, len(sessions))

    async def _from_nats(
        self, now: dt.datetime
    ) -> tuple[list[admin_pb2.Agent], list[QueueDepth], list[BreakerEntry]]:
        """The agents' heartbeats, the queues and the breakers; Unavailable naming NATS."""
        try:
            return await asyncio.gather(
                self._fleet.agents(), read_queues(self._js, now), read_breakers(self._js)
            )
        except (nats.errors.Error, TimeoutError, Unavailable) as error:
            # The heartbeats' reader wraps NATS's failure in Unavailable already.
            failure = error.__cause__ if isinstance(error, Unavailable) else error
            if not isinstance(failure, nats.errors.Error | TimeoutError):
                raise
            raise Unavailable(nats_failed(self._nats_servers, failure)) from error


# nats-py's errors of a connection that is down or being made again.
_CONNECTION_LOST = (
    nats.errors.NoServersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
)


def nats_failed(servers: str, error: BaseException) -> str:
    """What a status read that NATS failed says: which servers, what went wrong, what is missing."""
    reason = str(error).removeprefix("nats: ").strip() or type(error).__name__
    if isinstance(error, TimeoutError):
        state = "is not answering"
    elif isinstance(error, _CONNECTION_LOST):
        state = "cannot be reached"
    else:
        state = "failed the read"
    return (
        f"NATS at {servers} {state} ({reason}): the agents' heartbeats, the task queues "
        f"and the circuit breakers cannot be read"
    )
