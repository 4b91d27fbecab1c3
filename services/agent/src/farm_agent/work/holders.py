"""Whether an earlier attempt of a redelivered task may still run: the fence against twins.

JetStream redelivers a task whose in-progress acks stopped reaching it for its ack
wait: its agent died, or NATS (or the link to it) went down while the agent kept
running the task. In the second case the earlier attempt is alive, and running the
redelivery would run the task twice at once. So a redelivery (only: a first
delivery pays nothing) first looks for a holder: another attempt of the task on
this agent, or one that lapsed and ended here while the task's end mark is not
seen yet (endings.py), or another agent whose heartbeat (bucket farm_agents) lists
the task, running or ending, and is younger than `holder_lost_seconds`. While
there is one, the delivery is handed back as a wait. A heartbeat is also trusted
while this agent's own NATS connection is younger than that: after an outage every
agent's last beat is old until it reconnects and beats again.
"""

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import nats.errors
from google.protobuf.message import DecodeError
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from farm.queue.v1 import queue_pb2
from farm_core.queue import AGENTS_BUCKET
from farm_core.shared_buckets import bucket_keys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Held:
    """A live holder of the task: who, why it counts as live, and when to look again."""

    agent_id: str
    why: str
    retry_after_seconds: float


class Holders:
    """Finds a live earlier attempt of a task, from this agent's work and the heartbeats."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        agents: KeyValue,
        *,
        agent_id: str,
        lost_seconds: float,
        look_again_seconds: float,
        attempts_here: Callable[[str], int],
        awaits_mark_here: Callable[[str], bool] = lambda _task_id: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._nc = nc
        self._js = js
        self._agents = agents
        self._agent_id = agent_id
        self._lost_seconds = lost_seconds
        self._look_again_seconds = look_again_seconds
        self._attempts_here = attempts_here
        self._awaits_mark_here = awaits_mark_here
        self._clock = clock
        self._reconnects = nc.stats["reconnects"]
        self._connected_since = clock()

    async def holder(self, task_id: str) -> Held | None:
        """A live holder of the task other than the asking attempt; None if there is none."""
        if self._attempts_here(task_id) > 1:
            return Held(self._agent_id, "an earlier delivery runs here", self._look_again_seconds)
        if self._awaits_mark_here(task_id):
            why = "an earlier delivery lapsed and ended here; the task's end mark is not seen yet"
            return Held(self._agent_id, why, self._look_again_seconds)
        trust_old_beats = self._connection_age() < self._lost_seconds
        try:
            beats = await self._heartbeats()
        except (nats.errors.Error, TimeoutError) as error:
            # Unknown is not free: waiting costs a delay, running twice a duplicate effect.
            return Held("", f"the heartbeats cannot be read: {error}", self._look_again_seconds)
        now = dt.datetime.now(dt.UTC)
        for beat in beats:
            if beat.agent_id == self._agent_id:
                continue
            if task_id not in beat.running_task_ids and task_id not in beat.ending_task_ids:
                continue
            age = (now - beat.heartbeat_time.ToDatetime(dt.UTC)).total_seconds()
            if age <= self._lost_seconds or trust_old_beats:
                why = f"its heartbeat of {age:.1f} s ago lists the task"
                return Held(beat.agent_id, why, self._look_again_seconds)
            log.info(
                "task %s: agent %s lists it but sent no heartbeat for %.1f s: taken as lost",
                task_id,
                beat.agent_id,
                age,
            )
        return None

    def _connection_age(self) -> float:
        """Seconds since this agent's connection was (re)made, as far as it has seen."""
        reconnects = self._nc.stats["reconnects"]
        if reconnects != self._reconnects:
            # Seen now, later than it happened: the age errs young, which waits longer.
            self._reconnects = reconnects
            self._connected_since = self._clock()
        return self._clock() - self._connected_since

    async def _heartbeats(self) -> list[queue_pb2.AgentHeartbeat]:
        beats = []
        for key in await bucket_keys(self._js, AGENTS_BUCKET):
            try:
                entry = await self._agents.get(key)
            except NotFoundError:
                continue  # gone (stopped, or expired) since the keys were listed
            beat = queue_pb2.AgentHeartbeat()
            try:
                beat.ParseFromString(entry.value or b"")
            except DecodeError:
                continue
            beat.agent_id = beat.agent_id or key
            beats.append(beat)
        return beats
