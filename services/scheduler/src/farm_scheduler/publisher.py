"""Hands tasks to the agents over JetStream, once each; copies failed tasks to FARM_DEAD.

A task is stored first and published second. When NATS is unreachable the task
stays accepted and unpublished, and the republisher publishes it later; JetStream
drops a second publish of the same task by its `Nats-Msg-Id`. A task that ended
FAILED is copied to the dead-letter stream the same way: marked pending in SQL,
published, then marked done, so that no dead letter is lost while NATS is down.
Tasks that end while work on them may still be out there are marked through
`end_marks`, whose marks NATS did not take are retried by the republisher too.
"""

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.kv import KeyValue
from opentelemetry.trace import Span
from sqlalchemy.exc import SQLAlchemyError

from farm_core import pipelined, trace_context
from farm_core.db import utcnow
from farm_core.errors import Unavailable
from farm_core.periodic import Periodic
from farm_core.queue import dead_subject
from farm_scheduler.end_marks import EndMarks
from farm_scheduler.grants import Grants
from farm_scheduler.queue_messages import QueueMessages
from farm_scheduler.records import TaskRecord
from farm_scheduler.store import TaskStore
from farm_scheduler.work_messages import TaskMessage, dead_letter, shared_part, task_message

log = logging.getLogger(__name__)

REPUBLISH_BATCH = 100
ROUND_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, OSError, Unavailable)
"""What a round of the scheduler's background loops may fail with, to be tried next time."""


class TaskPublisher:
    """Publishes WorkItems and DeadLetters and marks them published; marks ended tasks."""

    def __init__(
        self,
        nc: Client,
        cancelled_tasks: KeyValue,
        store: TaskStore,
        timeout_seconds: float,
        grants: Grants,
    ) -> None:
        self._nc = nc
        self._grants = grants
        self._js: JetStreamContext = nc.jetstream()
        self.end_marks = EndMarks(nc, cancelled_tasks, store.engine)
        """The marks of ended tasks that agents and storage read."""
        self.queue_messages = QueueMessages(nc, self._js, store.engine)
        """The WorkItems of tasks that ended or moved while queued, to delete."""
        self._store = store
        self._timeout_seconds = timeout_seconds
        # The queuings whose WorkItem, and whose DeadLetter, this replica is publishing:
        # the republisher leaves them. The republish grace does not cover them all: a
        # task the region fallback moves is published again long after its create, a
        # dead letter's dead time is its failing event's own (a late one is past the
        # grace at once), and neither a create's SQL write before its publish nor the
        # mark after its ack is bounded by the publish timeout.
        self._in_flight: set[tuple[str, int]] = set()
        self._dead_in_flight: set[tuple[str, int]] = set()

    def connected(self) -> bool:
        """Whether the connection to NATS is up (not closed, not being made again)."""
        return bool(self._nc.is_connected)

    def publishing(self, record: TaskRecord) -> bool:
        """Whether this replica is publishing the task's queuing now (not marked published yet)."""
        return (record.id, record.state.requeues) in self._in_flight

    def publishing_dead_letter(self, record: TaskRecord) -> bool:
        """Whether this replica is publishing the dead letter of the task's queuing now."""
        return (record.id, record.state.requeues) in self._dead_in_flight

    @contextlib.contextmanager
    def _publishing(
        self, records: Sequence[TaskRecord], in_flight: set[tuple[str, int]] | None = None
    ) -> Iterator[None]:
        """Notes `records` as being published until their marks are written (or given up).

        `in_flight` is the set they are noted in: the WorkItems' unless told.
        """
        noted = self._in_flight if in_flight is None else in_flight
        queuings = {(record.id, record.state.requeues) for record in records}
        queuings -= noted
        noted |= queuings
        try:
            yield
        finally:
            noted -= queuings

    async def publish(self, record: TaskRecord) -> bool:
        """Publishes the task and marks it published; False if it is left for later.

        The publish is a span of the task's trace; its headers carry it to the agent.
        """

        async def mark(sequence: int) -> None:
            await self._store.mark_published((record, sequence))

        with self._publishing([record]):
            return await self._publish_then_mark(self._task_messages([record])[0], mark)

    async def publish_many(self, records: Sequence[TaskRecord]) -> list[TaskRecord]:
        """Publishes the tasks together and marks the stored ones published; those, as marked.

        The publishes are pipelined: all are sent, then their acknowledgements are
        awaited together (up to the publish timeout), and the tasks JetStream has
        stored are marked published in one transaction. The others are left to the
        republisher, as a single publish that failed is. The records returned are
        the published ones as now stored (`published`, with their queue sequence),
        so a caller knows without reading them again.
        """
        if not records:
            return []
        if not self._nc.is_connected:
            log.info(
                "NATS is unreachable: %d task(s) will be published when it is back", len(records)
            )
            return []
        with self._publishing(records):
            return await self._publish_many(records)

    async def _publish_many(self, records: Sequence[TaskRecord]) -> list[TaskRecord]:
        acks = await self._send_all(self._task_messages(records))
        stored = await pipelined.confirmed(acks, self._timeout_seconds)
        published = [
            (record, ack.result().seq)
            for record, ack in zip(records, acks, strict=False)
            if ack in stored
        ]
        if len(published) < len(records):
            log.warning(
                "JetStream stored %d of %d task(s); the others will be retried",
                len(published),
                len(records),
            )
        try:
            await self._store.mark_published(*published)
        except SQLAlchemyError as error:
            # JetStream has them; publishing them again later is deduplicated.
            log.warning("%d published task(s) could not be marked so: %s", len(published), error)
            return []
        return [
            dataclasses.replace(record, published=True, queue_sequence=sequence)
            for record, sequence in published
        ]

    def _task_messages(self, records: Sequence[TaskRecord]) -> list[TaskMessage]:
        """The WorkItem messages of `records`, the part tasks of one spec share built once.

        Their grants share one signature (Grants.for_tasks).
        """
        now = utcnow()
        shared: dict[tuple[int, dt.datetime, str, int], bytes] = {}
        messages = []
        for record, grant in zip(records, self._grants.for_tasks(records, now), strict=True):
            # id(): the records hold their specs, so no other spec takes the id meanwhile.
            key = (id(record.spec), record.create_time, record.tenant, record.tenant_max_running)
            part = shared.get(key)
            if part is None:
                part = shared[key] = shared_part(record)
            messages.append(task_message(record, grant, part))
        return messages

    async def publish_dead_letter(self, record: TaskRecord) -> bool:
        """Copies the FAILED task to FARM_DEAD and marks it done; False if left for later."""
        message = TaskMessage(
            "the dead letter of task",
            record.id,
            dead_subject(record.id),
            dead_letter(record).SerializeToString(deterministic=True),
            record.dead_letter_id,
            "task.dead_letter",
            record,
        )

        async def mark(_sequence: int) -> None:
            await self._store.mark_dead_letter_published(record.id, record.state.requeues)

        with self._publishing([record], self._dead_in_flight):
            return await self._publish_then_mark(message, mark)

    async def _publish_then_mark(
        self, message: TaskMessage, mark: Callable[[int], Awaitable[None]]
    ) -> bool:
        """Publishes `message`, then `mark`s it published in SQL; False if left for later.

        The mark is given the message's stream sequence.
        """
        sequence = await self._publish(message)
        if sequence is None:
            return False
        try:
            await mark(sequence)
        except SQLAlchemyError as error:
            # JetStream has the message; publishing it again later is deduplicated.
            log.warning(
                "%s %s is published but could not be marked so: %s",
                message.what,
                message.task_id,
                error,
            )
            return False
        return True

    async def _send_all(self, messages: Sequence[TaskMessage]) -> list[asyncio.Future[PubAck]]:
        """Sends `messages` in order without waiting; the futures of the ones sent.

        A send that fails (the connection lost midway) ends the sending: the rest
        are left for later.
        """
        acks: list[asyncio.Future[PubAck]] = []
        spans: list[Span | None] = []
        try:
            outgoing = self._outgoing(messages, spans)
            await pipelined.send_many(self._js, outgoing, self._timeout_seconds, acks)
        except (nats.errors.Error, TimeoutError) as error:
            log.warning(
                "sending task %s failed (%s); it and %d more will be retried",
                messages[len(acks)].task_id,
                error,
                len(messages) - len(acks) - 1,
            )
        finally:
            _end_spans_on_acks(spans, acks)
        return acks

    def _outgoing(
        self, messages: Sequence[TaskMessage], spans: list[Span | None]
    ) -> Iterator[pipelined.Outgoing]:
        """Each of `messages` with its headers: its trace context and Nats-Msg-Id.

        The span of each message taken is appended to `spans` (None when untraced).
        """
        # Asked once per call, not per message: `producing`'s own check (a tracer
        # provider lookup) was a seventh of a batch's publishing in a profile.
        bare = trace_context.passes_nothing()
        for message in messages:
            if bare and not message.record.trace_parent:
                spans.append(None)
                yield message.subject, message.payload, {"Nats-Msg-Id": message.message_id}
                continue
            span, headers = message.start_producing()
            spans.append(span)
            yield message.subject, message.payload, {**headers, "Nats-Msg-Id": message.message_id}

    async def _publish(self, message: TaskMessage) -> int | None:
        """Publishes `message`; its stream sequence, or None if it is left for later."""
        what, task_id = message.what, message.task_id
        if not self._nc.is_connected:
            log.info("NATS is unreachable: %s %s will be published when it is back", what, task_id)
            return None
        try:
            with message.producing() as headers:
                ack = await self._js.publish(
                    message.subject,
                    message.payload,
                    timeout=self._timeout_seconds,
                    headers={**headers, "Nats-Msg-Id": message.message_id},
                )
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("publishing %s %s failed (%s); it will be retried", what, task_id, error)
            return None
        return ack.seq


def _end_spans_on_acks(
    spans: Sequence[Span | None], acks: Sequence[asyncio.Future[PubAck]]
) -> None:
    """Ends each publish's span when its acknowledgement settles; at once if it was not sent."""
    for index, span in enumerate(spans):
        if span is not None:
            trace_context.end_when_settled(span, acks[index] if index < len(acks) else None)


class Republisher:
    """Every `interval_seconds`, publishes what JetStream has not stored yet.

    That is QUEUED tasks whose WorkItem, and FAILED tasks whose DeadLetter, could
    not be published when they were stored. The two are kept apart in SQL (a task
    is first published, and may later be copied to FARM_DEAD) and are republished
    by one loop, tasks first: the tasks a batch at a time with their publishes
    pipelined, the dead letters one by one. Before them it retries the end marks
    and the WorkItem deletes (`queue_messages`) that NATS did not take.
    """

    def __init__(
        self,
        store: TaskStore,
        publisher: TaskPublisher,
        interval_seconds: float,
        grace_seconds: float,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._grace = dt.timedelta(seconds=grace_seconds)
        self._loop = Periodic(
            "scheduler-republisher", self._round, interval_seconds, survives=ROUND_ERRORS
        )

    def start(self) -> None:
        """Starts the background loop."""
        self._loop.start()

    async def stop(self) -> None:
        """Stops the loop after the round in progress, if any."""
        await self._loop.stop()

    async def republish_pending(self) -> int:
        """One round: publishes a batch of pending tasks together; how many were published.

        Only tasks queued longer than the grace ago, and none this replica is
        publishing: the create or requeue that stored a task (on any replica) may
        still be publishing it, as it marks the task published only after
        JetStream's ack, and a second publish would be a stray one, dropped by
        JetStream only within its duplicate window. The grace (above the publish
        timeout, as the settings require) covers another replica's publishes of new
        and requeued tasks; this replica's own are left however old (TaskPublisher).
        """
        pending = await self._store.unpublished(REPUBLISH_BATCH, utcnow() - self._grace)
        withdrawing = await self._publisher.end_marks.withdrawing([each.id for each in pending])
        pending = [
            record
            for record in pending
            if record.id not in withdrawing and not self._publisher.publishing(record)
        ]
        if self._loop.stopping:
            return 0
        published = len(await self._publisher.publish_many(pending))
        if published:
            log.info("published %d task(s) accepted while NATS was unreachable", published)
        return published

    async def republish_dead_letters(self) -> int:
        """One round: publishes the pending dead letters, oldest first; how many were published.

        Only tasks given up longer than the grace ago, and none whose dead letter this
        replica is publishing, for the same reason as republish_pending's.
        """
        pending = await self._store.pending_dead_letters(REPUBLISH_BATCH, utcnow() - self._grace)
        published = 0
        for record in pending:
            if self._publisher.publishing_dead_letter(record):
                continue
            if self._loop.stopping or not await self._publisher.publish_dead_letter(record):
                break
            published += 1
        if published:
            log.info("published %d dead letter(s) held back while NATS was unreachable", published)
        return published

    async def _round(self) -> None:
        # Marks first: a requeued task's mark must be withdrawn before it is published.
        await self._publisher.end_marks.retry_pending()
        await self._publisher.queue_messages.retry_pending()
        await self.republish_pending()
        await self.republish_dead_letters()
