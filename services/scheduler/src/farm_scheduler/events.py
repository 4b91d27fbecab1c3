"""Applies the agents' events to the tasks table: a durable pull consumer on FARM_EVENTS.

Each event is applied in its own transaction and acked after the commit; an event
that could not be applied is redelivered. Applying one twice changes nothing.
Replicas of the scheduler share the durable consumer, so each event is applied once.
The end of an attempt that a later one has overtaken (a cut-off agent's) is kept in
the task's attempt history only (lifecycle.overtaken), logged and counted.
An event without the grant of its task (the one its WorkItem carried) is dropped:
only an agent that was handed the task can move it. The reporting agent is the one
its subject names (`events.tasks.<task_id>.<agent_id>`, which only that agent's
NATS user may publish): an event whose payload names another agent is dropped
(`bound_agent_refusal`). A task failed by a delivery
that never started it is marked ended (`mark_end`), since an earlier attempt may
still run; so is a task ended by an attempt whose message was delivered again
meanwhile (`AgentEvent.redelivered`), so that the redelivery, waiting while that
attempt ran, is acked unrun. The agent decides that flag when it builds the event,
and resends the same event (one Nats-Msg-Id) when NATS is away: a copy buffered
during an outage reaches JetStream unflagged after the delivery lapsed. So a final
event that JetStream stored more than `late_event_seconds` after the agent built it
(`AgentEvent.time`) marks its task too, even when the task had ended already, and
is counted (`farm_late_final_events_total`). A RUNNING report that changes nothing
because its task has ended marks the task too (its mark may never have been written),
which stops the attempt.
No other event costs a NATS request.
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
from farm.tasks.v1 import tasks_pb2
from farm_core.db import utcnow
from farm_core.errors import Unavailable
from farm_core.logs import log_context
from farm_core.pulls import Puller
from farm_core.queue import EVENT_STREAM, TASK_EVENT_SUBJECTS, event_agent, settle
from farm_core.request_text import without_nul
from farm_core.timestamps import from_timestamp
from farm_core.trace_context import consuming
from farm_scheduler import lifecycle, metrics
from farm_scheduler.end_marks import end_mark
from farm_scheduler.grants import Grants
from farm_scheduler.store import TaskChange, TaskStore
from farm_scheduler.task_rows import read_task

log = logging.getLogger(__name__)

DURABLE_NAME = "scheduler"
FETCH_BATCH = 64
FETCH_WAIT_SECONDS = 5.0
RETRY_SECONDS = 1.0
"""Pause after NATS refused a fetch, and delay before an event that failed comes again."""
_STATUSES = frozenset(tasks_pb2.TaskStatus.values())


def bound_agent_refusal(subject: str, claimed: str, accept_unbound: bool, kind: str) -> str:
    """Why an event on `subject` whose payload names agent `claimed` is dropped ("" if not).

    The subject's last token is the agent id the publisher's NATS user is bound to; an
    event on the subject agents used before (no agent token) is refused unless
    `accept_unbound` (a rolling upgrade). Each refusal is counted by `kind`.
    """
    bound = event_agent(subject)
    if bound is None:
        if accept_unbound:
            return ""
        reason, why = "unbound", "its subject names no agent (an agent older than this scheduler)"
    elif bound != claimed:
        reason, why = "agent_differs", f"published by agent {bound!r}, not by the agent it names"
    else:
        return ""
    metrics.refused_agent_events.labels(kind=kind, reason=reason).inc()
    return why


class DurableConsumer:
    """A durable pull consumer on FARM_EVENTS that hands each message to `handle`.

    `handle` settles the message itself (ack, nak or term). A message fetched but not
    settled within `ack_wait_seconds` (its scheduler was killed) is delivered again.
    """

    def __init__(
        self,
        durable_name: str,
        subjects: str,
        handle: Callable[[Msg], Awaitable[None]],
        ack_wait_seconds: float,
    ) -> None:
        self._durable_name = durable_name
        self._subjects = subjects
        self._handle_message = handle
        self._ack_wait_seconds = ack_wait_seconds
        self._subscription: JetStreamContext.PullSubscription | None = None
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False
        self._fetching = False

    async def start(self, js: JetStreamContext) -> None:
        """Binds the durable consumer (creating it if needed) and starts handling messages."""
        await js.add_consumer(
            EVENT_STREAM,
            ConsumerConfig(
                name=self._durable_name,
                durable_name=self._durable_name,
                filter_subject=self._subjects,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self._ack_wait_seconds,
            ),
        )
        self._subscription = await js.pull_subscribe_bind(
            durable=self._durable_name, stream=EVENT_STREAM
        )
        self._loop = asyncio.create_task(
            self._run(self._subscription), name=f"{self._durable_name}-events"
        )

    async def stop(self, grace_seconds: float) -> None:
        """Stops fetching; lets the batch in hand be handled for up to `grace_seconds`."""
        self._stopping = True
        loop, self._loop = self._loop, None
        if loop is not None:
            if self._fetching:
                # Nothing is lost: a message fetched but not acked comes again after the ack wait.
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
                log.warning("unsubscribing from %s failed: %s", self._subjects, error)

    async def _run(self, subscription: JetStreamContext.PullSubscription) -> None:
        puller = Puller(
            subscription, FETCH_BATCH, FETCH_WAIT_SECONDS, self._subjects, RETRY_SECONDS
        )
        while not self._stopping:
            self._fetching = True
            try:
                messages = await puller.fetch()
            finally:
                self._fetching = False
            for message in messages:
                await self._handle_message(message)


class EventConsumer(DurableConsumer):
    """Pulls AgentEvents, applies each to the store, and reports what changed."""

    def __init__(
        self,
        store: TaskStore,
        on_change: Callable[[TaskChange], Awaitable[None]],
        grants: Grants,
        ack_wait_seconds: float,
        mark_end: Callable[[str, str], Awaitable[None]],
        accept_unbound: bool = False,
        late_event_seconds: float = 5.0,
    ) -> None:
        super().__init__(DURABLE_NAME, TASK_EVENT_SUBJECTS, self._handle, ack_wait_seconds)
        self._late_event_seconds = late_event_seconds
        self._accept_unbound = accept_unbound
        self._store = store
        self._on_change = on_change
        self._mark_end = mark_end
        self._grants = grants

    async def _handle(self, message: Msg) -> None:
        about = f"an event on {message.subject}"
        event = queue_pb2.AgentEvent()
        try:
            event.ParseFromString(message.data)
        except DecodeError as error:
            log.error("dropping a message on %s: not an AgentEvent: %s", message.subject, error)
            await settle(message.term(), about)
            return
        # A page's own error text (a thrown Error's message) may hold a NUL, which
        # PostgreSQL cannot store: the event would fail to apply, again and again.
        if event.HasField("error"):
            event.error.message = without_nul(event.error.message)
        refusal = bound_agent_refusal(
            message.subject, event.agent_id, self._accept_unbound, "tasks"
        ) or self._grants.refusal(event.grant, event.task_id)
        if refusal:
            log.warning(
                "dropping event %s of task %s from agent %r: %s",
                event.event_id,
                event.task_id,
                event.agent_id,
                refusal,
            )
            await settle(message.term(), about)
            return
        status = tasks_pb2.TaskStatus.Name(event.status) if event.status in _STATUSES else ""
        with (
            log_context(task_id=event.task_id),
            consuming(
                "task.event.apply",
                message.subject,
                message.headers,
                attributes={"farm.task_id": event.task_id, "farm.status": status},
            ),
        ):
            await self._apply(event, message)

    async def _apply(self, event: queue_pb2.AgentEvent, message: Msg) -> None:
        about = f"event {event.event_id} of task {event.task_id}"
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
        late = event.status in _FINAL_EVENTS and self._late(event, message)
        if change is not None:
            _note_overtaken(change, event)
            after = change.after.state
            reason = _end_to_mark(change.before.state, after, event)
            if reason or (late and (reason := end_mark(after.status, after.error_code))):
                await self._mark_end(event.task_id, reason)
            await self._on_change(change)
        elif late or event.status == lifecycle.RUNNING:
            await self._mark_if_ended(event)
        await settle(message.ack(), about)

    def _late(self, event: queue_pb2.AgentEvent, message: Msg) -> bool:
        """Whether JetStream stored the event late: its attempt's delivery may have lapsed.

        An agent's copy buffered while NATS was away arrives so.
        """
        if not event.HasField("time"):
            return False
        delay = message.metadata.timestamp - from_timestamp(event.time)
        if delay.total_seconds() <= self._late_event_seconds:
            return False
        status = metrics.status_label(event.status)
        metrics.late_final_events.labels(status=status).inc()
        log.info(
            "event %s of task %s was stored %.1f s after it was built: its delivery may lapse",
            event.event_id,
            event.task_id,
            delay.total_seconds(),
        )
        return True

    async def _mark_if_ended(self, event: queue_pb2.AgentEvent) -> None:
        """Marks the task ended if it is, after an event that changed nothing.

        A late final event may be a late copy; a RUNNING report of an ended task is an
        attempt that started without its mark (NATS was away when the task ended, and
        the scheduler stopped before the kept mark was written): the mark's cancel
        notice stops it.
        """
        try:
            async with self._store.engine.connect() as connection:
                record = await read_task(connection, event.task_id, None)
        except (SQLAlchemyError, OSError) as error:
            # Only the mark is lost: the task's end stands.
            log.warning("reading task %s to mark it ended failed: %s", event.task_id, error)
            return
        if record is None:
            return
        if reason := end_mark(record.state.status, record.state.error_code):
            await self._mark_end(event.task_id, reason)


_FINAL_EVENTS = frozenset({lifecycle.SUCCEEDED, lifecycle.FAILED})


def _end_to_mark(
    before: lifecycle.TaskState, after: lifecycle.TaskState, event: queue_pb2.AgentEvent
) -> str:
    """Why to mark the task ended for agents and storage; "" if no work on it may be left."""
    redelivered = event.redelivered and not lifecycle.is_final(before.status)
    if redelivered or lifecycle.ended_elsewhere(before, after, event):
        return end_mark(after.status, after.error_code)
    return ""


def _note_overtaken(change: TaskChange, event: queue_pb2.AgentEvent) -> None:
    """Logs and counts an overtaken attempt's end, which changed only the task's history."""
    before = change.before.state
    if event.status == lifecycle.RUNNING or not lifecycle.overtaken(before, event):
        return
    status = metrics.status_label(event.status)
    metrics.stale_attempt_events.labels(status=status).inc()
    log.warning(
        "task %s: attempt %d on agent %r reported %s after attempt %d started; "
        "kept in its history only",
        event.task_id,
        before.attempt_base + event.attempt,
        event.agent_id,
        status,
        before.attempts,
    )
