"""The agents' side of the queue in the scheduler's tests: pulling WorkItems from
FARM_TASKS, publishing AgentEvents on `events.tasks.<id>.<agent_id>` and putting
heartbeats in the agents' bucket, as farm_agent does."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.db import utcnow
from farm_core.queue import (
    AGENTS_BUCKET,
    ALL_TASK_SUBJECTS,
    DEAD_STREAM,
    EVENT_STREAM,
    TASK_STREAM,
    dead_subject,
    event_subject,
)
from farm_core.shared_buckets import agents_bucket
from farm_core.timestamps import to_timestamp
from farm_scheduler.events import DURABLE_NAME
from farm_scheduler.sessions.events import DURABLE_NAME as SESSIONS_DURABLE
from tests.helpers import assert_eventually, grant_for

RPC_TIMEOUT = 10.0
STARTED = to_timestamp(dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC))
"""The start time of the agents whose heartbeats a test puts (`beat`)."""


@dataclass
class Queue:
    """The test's own connection to NATS: the agents' side of the queue."""

    nc: Client
    js: JetStreamContext
    agent_id: str = "agent-test"
    _work: JetStreamContext.PullSubscription | None = None

    async def subjects(self, stream: str = TASK_STREAM) -> dict[str, int]:
        """Messages held by `stream`, by subject."""
        info = await self.js.stream_info(stream, subjects_filter=">")
        return dict(info.state.subjects or {})

    async def take(self) -> queue_pb2.WorkItem:
        """Pulls the next task as an agent does (and acks it)."""
        if self._work is None:
            await self.js.add_consumer(
                TASK_STREAM,
                ConsumerConfig(
                    name="test-agent",
                    durable_name="test-agent",
                    filter_subject=ALL_TASK_SUBJECTS,
                    ack_policy=AckPolicy.EXPLICIT,
                ),
            )
            self._work = await self.js.pull_subscribe_bind(durable="test-agent", stream=TASK_STREAM)
        [message] = await self._work.fetch(1, timeout=RPC_TIMEOUT)
        await message.ack()
        return queue_pb2.WorkItem.FromString(message.data)

    async def report(
        self,
        task_id: str,
        status: tasks_pb2.TaskStatus.ValueType,
        attempt: int = 1,
        *,
        agent_id: str | None = None,
        result: tasks_pb2.TaskResult | None = None,
        error: tasks_pb2.TaskError | None = None,
        retry_time: dt.datetime | None = None,
        time: dt.datetime | None = None,
        grant: str | None = None,
        subject: str | None = None,
    ) -> queue_pb2.AgentEvent:
        """Publishes an AgentEvent to FARM_EVENTS as an agent does (sent now, or at `time`).

        It carries the task's grant (as its WorkItem would), or `grant` if given, on the
        subject of its agent (as that agent's NATS user may), or on `subject` if given.
        """
        event = queue_pb2.AgentEvent(
            grant=grant_for(task_id, "") if grant is None else grant,
            event_id=uuid.uuid4().hex,
            task_id=task_id,
            status=status,
            agent_id=agent_id or self.agent_id,
            attempt=attempt,
            result=result,
            error=error,
        )
        if time is None:
            event.time.GetCurrentTime()
        else:
            event.time.CopyFrom(to_timestamp(time))
        if retry_time is not None:
            event.retry_time.CopyFrom(to_timestamp(retry_time))
        await self.js.publish(
            subject or event_subject(task_id, event.agent_id),
            event.SerializeToString(),
            headers={"Nats-Msg-Id": event.event_id},
            timeout=RPC_TIMEOUT,
        )
        return event

    async def dead_letter(self, task_id: str) -> Any:
        """The DeadLetter message of `task_id` on FARM_DEAD, once the scheduler has sent it."""

        async def sent() -> bool:
            return (await self.subjects(DEAD_STREAM)).get(dead_subject(task_id), 0) > 0

        await assert_eventually(sent, message=f"no dead letter of task {task_id}")
        return await self.js.get_last_msg(DEAD_STREAM, dead_subject(task_id))

    async def events_applied(self) -> bool:
        """Whether the scheduler has applied (and acked) every event in FARM_EVENTS."""
        info = await self.js.consumer_info(EVENT_STREAM, DURABLE_NAME)
        applied: bool = info.num_pending == 0 and info.num_ack_pending == 0
        return applied


async def beat(queue: Queue, agent_id: str, **fields: object) -> queue_pb2.AgentHeartbeat:
    """Puts a heartbeat in the agents' bucket, as an agent does every few seconds."""
    values: dict[str, object] = {"heartbeat_time": to_timestamp(utcnow()), **fields}
    heartbeat = queue_pb2.AgentHeartbeat(
        agent_id=agent_id,
        concurrency=2,
        start_time=STARTED,
        **values,  # type: ignore[arg-type]
    )
    bucket = await agents_bucket(queue.js)
    await bucket.put(agent_id, heartbeat.SerializeToString())
    return heartbeat


async def sessions_applied(queue: Queue) -> bool:
    """Whether the scheduler has settled every session event."""
    info = await queue.js.consumer_info(EVENT_STREAM, SESSIONS_DURABLE)
    settled: bool = info.num_pending == 0 and info.num_ack_pending == 0
    return settled


async def reset_streams(js: JetStreamContext) -> None:
    """Deletes the farm's streams and agent registry, so each test starts with empty ones."""
    for stream in (TASK_STREAM, EVENT_STREAM, DEAD_STREAM, f"KV_{AGENTS_BUCKET}"):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)
