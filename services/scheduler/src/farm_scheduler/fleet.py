"""The agents as their heartbeats describe them, and drain orders to one of them."""

import datetime as dt
import logging
import re
from collections.abc import Callable

import nats.errors
from nats.aio.client import Client

from farm.admin.v1 import admin_pb2
from farm.queue.v1 import queue_pb2
from farm_core.db import utcnow
from farm_core.errors import InvalidArgument, NotFound, Unavailable
from farm_core.queue import drain_subject
from farm_scheduler.heartbeats import Heartbeats

log = logging.getLogger(__name__)

# Agent ids as the agents' settings allow them; also valid NATS key and subject tokens.
AGENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,255}")


def agent_from_heartbeat(
    heartbeat: queue_pb2.AgentHeartbeat, now: dt.datetime, lost_after_seconds: float
) -> admin_pb2.Agent:
    """The API's view of an agent from its latest heartbeat, read at `now`.

    An agent whose heartbeat is older than `lost_after_seconds` is lost. Agents older
    than the heartbeat's place counts count a place per running task and session.
    """
    busy = heartbeat.busy_places or len(heartbeat.running_task_ids) + len(heartbeat.session_ids)
    agent = admin_pb2.Agent(
        id=heartbeat.agent_id,
        region=heartbeat.region,
        concurrency=heartbeat.concurrency,
        running_task_ids=heartbeat.running_task_ids,
        draining=heartbeat.draining,
        session_ids=heartbeat.session_ids,
        version=heartbeat.version,
        browsers=heartbeat.browsers,
        busy_places=busy,
        free_places=max(0, heartbeat.concurrency - busy),
    )
    if heartbeat.HasField("start_time"):
        agent.start_time.CopyFrom(heartbeat.start_time)
    if heartbeat.HasField("heartbeat_time"):
        agent.heartbeat_time.CopyFrom(heartbeat.heartbeat_time)
        beat = heartbeat.heartbeat_time.ToDatetime(dt.UTC)
        agent.lost = (now - beat).total_seconds() > lost_after_seconds
    return agent


def checked_agent_id(agent_id: str) -> str:
    """The requested agent id; one not in the form of agents' ids names no agent."""
    if not agent_id:
        raise InvalidArgument("id", "is required")
    if not AGENT_ID_PATTERN.fullmatch(agent_id) or agent_id.strip(".") != agent_id:
        raise NotFound("agent", agent_id[:64])
    return agent_id


class Fleet:
    """Reads the `farm_agents` bucket; publishes drain notices on `control.drain.<id>`."""

    def __init__(
        self,
        nc: Client,
        heartbeats: Heartbeats,
        timeout_seconds: float,
        lost_after_seconds: float,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._nc = nc
        self._heartbeats = heartbeats
        self._timeout_seconds = timeout_seconds
        self._lost_after_seconds = lost_after_seconds
        self._clock = clock

    async def agents(self) -> list[admin_pb2.Agent]:
        """Every agent that sent a heartbeat within the bucket's time to live, by id."""
        now = self._clock()
        beats = await self._heartbeats.all()
        return [
            agent_from_heartbeat(beats[agent_id], now, self._lost_after_seconds)
            for agent_id in sorted(beats)
        ]

    async def agent(self, agent_id: str) -> admin_pb2.Agent:
        """The agent `agent_id` from its latest heartbeat; NotFound if it sent none lately."""
        heartbeat = await self._heartbeats.get(checked_agent_id(agent_id))
        if heartbeat is None:
            raise NotFound("agent", agent_id)
        return agent_from_heartbeat(heartbeat, self._clock(), self._lost_after_seconds)

    async def drain(self, agent_id: str) -> admin_pb2.Agent:
        """Tells the agent to drain; the agent as its last heartbeat said, marked draining."""
        agent = await self.agent(agent_id)
        notice = queue_pb2.DrainNotice(agent_id=agent.id)
        try:
            await self._nc.publish(drain_subject(agent.id), notice.SerializeToString())
            # The notice is plain NATS: flushed, it has reached the server.
            await self._nc.flush(timeout=max(1, round(self._timeout_seconds)))
        except (nats.errors.Error, TimeoutError) as error:
            raise Unavailable(f"the drain notice to agent {agent.id!r} failed: {error}") from error
        log.info("asked agent %s to drain", agent.id)
        agent.draining = True
        return agent
