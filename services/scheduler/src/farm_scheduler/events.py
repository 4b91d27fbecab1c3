"""Applies the agents' events to the tasks table: a durable pull consumer on FARM_EVENTS.

Each event is applied in its own transaction and acked after the commit; an event
that could not be applied is redelivered. Applying one twice changes nothing.
Replicas of the scheduler share the durable consumer, so each event is applied once.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

import nats.errors
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy.exc import SQLAlchemyError

from farm.queue.v1 import queue_pb2
from farm_core.db import utcnow
from farm_core.errors import Unavailable
from farm_core.queue import EVENT_STREAM, TASK_EVENT_SUBJECTS, fetch_batch, settle
from farm_scheduler.store import TaskChange, TaskStore

log = logging.getLogger(__name__)

DURABLE_NAME = "scheduler"
FETCH_BATCH = 64
FETCH_WAIT_SECONDS = 5.0
ACK_WAIT_SECONDS = 30.0
RETRY_SECONDS = 1.0
"""Pause after NATS refused a fetch, and delay before an event that failed comes again."""


class EventConsumer:
    """Pulls AgentEvents, applies each to the store, and reports what changed."""

    def __init__(
        self, store: TaskStore, on_change: Callable[[TaskChange], Awaitable[None]]
    ) -> None:
        self._store = store
        self._on_change = on_change
        self._subscription: JetStreamContext.PullSubscription | None = None
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False
        self._fetching = False

    async def start(self, js: JetStreamContext) -> None:
        """Binds the durable consumer (creating it if needed) and starts applying events."""
        await js.add_consumer(
            EVENT_STREAM,
            ConsumerConfig(
                name=DURABLE_NAME,
                durable_name=DURABLE_NAME,
                filter_subject=TASK_EVENT_SUBJECTS,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=ACK_WAIT_SECONDS,
            ),
        )
        self._subscription = await js.pull_subscribe_bind(durable=DURABLE_NAME, stream=EVENT_STREAM)
        self._loop = asyncio.create_task(self._run(self._subscription), name="scheduler-events")

    async def stop(self, grace_seconds: float) -> None:
        """Stops fetching; lets the batch in hand be applied for up to `grace_seconds`."""
        self._stopping = True
        loop, self._loop = self._loop, None
        if loop is not None:
            if self._fetching:
                # Nothing is lost: an event fetched but not acked comes again after the ack wait.
                loop.cancel()
            done, _ = await asyncio.wait({loop}, timeout=grace_seconds)
            if not done:
                loop.cancel()
                await asyncio.wait({loop})
            if not loop.cancelled():
                loop.result()
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except nats.errors.Error as error:
                log.warning("unsubscribing from the events failed: %s", error)

    async def _run(self, subscription: JetStreamContext.PullSubscription) -> None:
        while not self._stopping:
            self._fetching = True
            try:
                messages = await fetch_batch(
                    subscription, FETCH_BATCH, FETCH_WAIT_SECONDS, "events", RETRY_SECONDS
                )
            finally:
                self._fetching = False
            for message in messages:
                await self._handle(message)

    async def _handle(self, message: Msg) -> None:
        about = f"an event on {message.subject}"
        event = queue_pb2.AgentEvent()
        try:
            event.ParseFromString(message.data)
        except DecodeError as error:
            log.error("dropping a message on %s: not an AgentEvent: %s", message.subject, error)
            await settle(message.term(), about)
            return
        try:
            change = await self._store.apply_event(
                event, utcnow(), message.metadata.sequence.stream
            )
        except (SQLAlchemyError, OSError, Unavailable) as error:
            log.warning(
                "applying event %s of task %s failed: %s", event.event_id, event.task_id, error
            )
            await settle(message.nak(delay=RETRY_SECONDS), about)
            return
        except Exception:
            # Keep applying the other events; this one comes again after the delay.
            log.exception("applying event %s of task %s failed", event.event_id, event.task_id)
            await settle(message.nak(delay=RETRY_SECONDS), about)
            return
        if change is not None:
            await self._on_change(change)
        await settle(message.ack(), about)
