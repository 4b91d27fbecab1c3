"""Hands tasks to the agents over JetStream, once each, and tells them about cancels.

A task is stored first and published second. When NATS is unreachable the task
stays accepted and unpublished, and the republisher publishes it later; JetStream
drops a second publish of the same task by its `Nats-Msg-Id`.
"""

import asyncio
import contextlib
import logging

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from sqlalchemy.exc import SQLAlchemyError

from farm.queue.v1 import queue_pb2
from farm_core.queue import cancel_subject, task_subject
from farm_core.timestamps import to_timestamp
from farm_scheduler.store import TaskRecord, TaskStore

log = logging.getLogger(__name__)

REPUBLISH_BATCH = 100


def work_item(record: TaskRecord) -> queue_pb2.WorkItem:
    """The message that hands `record` to an agent."""
    return queue_pb2.WorkItem(
        task_id=record.id,
        tenant=record.tenant,
        spec=record.spec,
        create_time=to_timestamp(record.create_time),
    )


class TaskPublisher:
    """Publishes tasks' WorkItems and marks them published; announces cancels."""

    def __init__(
        self,
        nc: Client,
        cancelled_tasks: KeyValue,
        store: TaskStore,
        timeout_seconds: float,
    ) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._cancelled_tasks = cancelled_tasks
        self._store = store
        self._timeout_seconds = timeout_seconds

    async def publish(self, record: TaskRecord) -> bool:
        """Publishes the task and marks it published; False if it is left for later."""
        if not self._nc.is_connected:
            log.info("NATS is unreachable: task %s will be published when it is back", record.id)
            return False
        try:
            await self._js.publish(
                task_subject(record.spec.region, record.spec.priority),
                work_item(record).SerializeToString(deterministic=True),
                timeout=self._timeout_seconds,
                headers={"Nats-Msg-Id": record.id},
            )
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("publishing task %s failed (%s); it will be retried", record.id, error)
            return False
        try:
            await self._store.mark_published(record.id)
        except SQLAlchemyError as error:
            # JetStream has the task; publishing it again later is deduplicated.
            log.warning("task %s is published but could not be marked so: %s", record.id, error)
            return False
        return True

    async def announce_cancel(self, task_id: str) -> None:
        """Tells the agents the task is cancelled: in the bucket and on its cancel subject."""
        try:
            await self._cancelled_tasks.put(task_id, b"")
            await self._nc.publish(
                cancel_subject(task_id),
                queue_pb2.CancelNotice(task_id=task_id).SerializeToString(),
            )
        except (nats.errors.Error, TimeoutError) as error:
            # The cancel stands in the database: events of an agent that still runs
            # the task change nothing.
            log.warning("telling the agents that task %s is cancelled failed: %s", task_id, error)


class Republisher:
    """Every `interval_seconds`, publishes the QUEUED tasks JetStream has not stored yet."""

    def __init__(self, store: TaskStore, publisher: TaskPublisher, interval_seconds: float) -> None:
        self._store = store
        self._publisher = publisher
        self._interval_seconds = interval_seconds
        self._stopping = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts the background loop."""
        if self._loop is None:
            self._loop = asyncio.create_task(self._run(), name="scheduler-republisher")

    async def stop(self) -> None:
        """Stops the loop after the round in progress, if any."""
        self._stopping.set()
        if self._loop is not None:
            await self._loop

    async def republish_pending(self) -> int:
        """One round: publishes the pending tasks, oldest first; how many were published."""
        published = 0
        for record in await self._store.unpublished(REPUBLISH_BATCH):
            if self._stopping.is_set() or not await self._publisher.publish(record):
                break
            published += 1
        if published:
            log.info("published %d task(s) accepted while NATS was unreachable", published)
        return published

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_seconds)
            if self._stopping.is_set():
                return
            try:
                await self.republish_pending()
            except SQLAlchemyError as error:
                log.warning("looking for unpublished tasks failed: %s", error)
