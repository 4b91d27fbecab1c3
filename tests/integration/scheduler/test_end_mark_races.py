"""Two orders for one task's end mark reach NATS in either order; the bucket says what SQL says.

A mark is written after the commit that ended its task, a withdrawal after a
requeue's commit, a kept order by a later round: from two replicas, a write may land
after one that followed a later commit. Each test holds one replica's write to the
bucket (a wrapper around its KeyValue) until the other order has been committed and
written, then lets it go: a requeued task must not keep a stale mark (agents would
ack it unrun, and it would stay QUEUED for good), a cancelled one must not lose its
mark. Real nats-server, two scheduler replicas on one SQLite file or PostgreSQL.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import nats.errors
import pytest
from nats.js.kv import KeyValue
from sqlalchemy import func, insert, select

from farm.tasks.v1 import tasks_pb2
from farm_core.db import utcnow
from farm_core.shared_buckets import cancel_bucket
from farm_scheduler.end_marks import pending_marks
from tests.helpers import assert_eventually
from tests.integration.scheduler.admin_calls import requeue
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import (
    BOTH_DATABASES,
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    Scheduler,
    StartScheduler,
    until,
)
from tests.integration.scheduler.end_marks import end_mark, until_marked

pytestmark = [pytest.mark.integration, BOTH_DATABASES]

STUCK = "agent-stuck"
OTHER = "agent-other"
EXHAUSTED = tasks_pb2.TaskError(code="ATTEMPTS_EXHAUSTED", message="not started")
MARK, DELETE = "mark", "delete"
HOLD_SECONDS = 30.0
"""How long a held write waits to be let go at most (the test fails first)."""


@dataclass
class Hold:
    """Stops the first write of `kind` to task `task_id`'s entry, on any replica.

    The write waits until `go` (or, `refused`, fails as NATS's timeout does).
    """

    task_id: str
    kind: str
    refused: bool = False
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)

    async def passing(self, kind: str, key: str) -> None:
        """Waits here if this is the write to hold (once)."""
        if kind != self.kind or key != self.task_id or self.reached.is_set():
            return
        self.reached.set()
        if self.refused:
            raise nats.errors.TimeoutError
        await asyncio.wait_for(self.go.wait(), timeout=HOLD_SECONDS)

    async def until_reached(self) -> None:
        """Waits until the write to hold has come (its order's commit is done)."""
        await asyncio.wait_for(self.reached.wait(), timeout=HOLD_SECONDS)


@dataclass
class HeldBucket:
    """A replica's bucket of ended tasks whose writes pass the test's holds first."""

    bucket: KeyValue
    holds: list[Hold]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bucket, name)

    async def _pass(self, kind: str, key: str) -> None:
        for hold in self.holds:
            await hold.passing(kind, key)

    async def put(self, key: str, value: bytes, **options: Any) -> int:
        await self._pass(MARK, key)
        revision: int = await self.bucket.put(key, value, **options)
        return revision

    async def update(self, key: str, value: bytes, **options: Any) -> int:
        await self._pass(MARK, key)
        revision: int = await self.bucket.update(key, value, **options)
        return revision

    async def create(self, key: str, value: bytes, **options: Any) -> int:
        await self._pass(MARK, key)
        revision: int = await self.bucket.create(key, value, **options)
        return revision

    async def delete(self, key: str, **options: Any) -> bool:
        await self._pass(DELETE, key)
        deleted: bool = await self.bucket.delete(key, **options)
        return deleted


@dataclass
class Replicas:
    """Two schedulers on one database and NATS, their buckets behind `holds`."""

    first: Scheduler
    second: Scheduler
    holds: list[Hold]

    def hold(self, task_id: str, kind: str, refused: bool = False) -> Hold:
        """Holds the next write of `kind` to the task's entry from now."""
        hold = Hold(task_id, kind, refused)
        self.holds.append(hold)
        return hold


@pytest.fixture
async def replicas(start_scheduler: StartScheduler, monkeypatch: pytest.MonkeyPatch) -> Replicas:
    """Two replicas whose republishers run only when the test runs a round."""
    holds: list[Hold] = []
    started = [await start_scheduler(republish_interval_seconds=3600) for _ in range(2)]
    for scheduler in started:
        publisher = scheduler.service.publisher
        assert publisher is not None
        end_marks = publisher.end_marks
        monkeypatch.setattr(end_marks, "_ended_tasks", HeldBucket(end_marks._ended_tasks, holds))
    return Replicas(started[0], started[1], holds)


async def started_elsewhere(scheduler: Scheduler, queue: Queue) -> tasks_pb2.Task:
    """A task of one attempt whose agent is stuck: another agent will fail its redelivery."""
    task = await scheduler.create(maxAttempts=1)
    await queue.take()
    await queue.report(task.id, RUNNING, 1, agent_id=STUCK)
    await until(scheduler, task.id, RUNNING, 1)
    return task


async def failed_unstarted(scheduler: Scheduler, queue: Queue, bucket: KeyValue) -> str:
    """A task failed ATTEMPTS_EXHAUSTED by a delivery it never started, and so marked."""
    task = await started_elsewhere(scheduler, queue)
    await queue.report(task.id, FAILED, 2, agent_id=OTHER, error=EXHAUSTED)
    await until_marked(bucket, task.id, "FAILED: ATTEMPTS_EXHAUSTED")
    return task.id


async def kept(scheduler: Scheduler) -> int:
    """Orders kept for a retry, all tasks'."""
    async with scheduler.service.store.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(pending_marks)) or 0)


def round_of(scheduler: Scheduler) -> asyncio.Task[int]:
    """A round of the replica's kept orders, started now."""
    publisher = scheduler.service.publisher
    assert publisher is not None
    return asyncio.create_task(publisher.end_marks.retry_pending())


async def requeued_and_published(queue: Queue, scheduler: Scheduler, task_id: str) -> None:
    """Asserts that the task is queued, unmarked, and its new message is there to run."""
    assert await end_mark(await cancel_bucket(queue.js), task_id) is None
    assert (await queue.take()).task_id == task_id
    assert await scheduler.status(task_id) == QUEUED


async def test_a_mark_landing_after_a_requeues_withdrawal_is_withdrawn(
    replicas: Replicas, queue: Queue
) -> None:
    task = await started_elsewhere(replicas.first, queue)
    held = replicas.hold(task.id, MARK)
    await queue.report(task.id, FAILED, 2, agent_id=OTHER, error=EXHAUSTED)
    await held.until_reached()
    assert await replicas.first.status(task.id) == FAILED

    # Committed after the failure, written before the failure's mark.
    await requeue(replicas.second, task.id)
    held.go.set()

    await assert_eventually(queue.events_applied, message="the failure was not applied")
    await requeued_and_published(queue, replicas.first, task.id)


async def test_a_withdrawal_landing_after_a_cancels_mark_leaves_it_marked(
    replicas: Replicas, queue: Queue
) -> None:
    bucket = await cancel_bucket(queue.js)
    task_id = await failed_unstarted(replicas.first, queue, bucket)
    held = replicas.hold(task_id, DELETE)
    requeuing = asyncio.create_task(requeue(replicas.first, task_id))
    await held.until_reached()

    assert (await replicas.second.cancel(task_id)).status == CANCELLED
    held.go.set()
    await requeuing

    assert await end_mark(bucket, task_id) == "CANCELLED"
    assert await replicas.first.status(task_id) == CANCELLED


async def test_a_kept_marks_retry_landing_after_a_requeues_withdrawal_is_withdrawn(
    replicas: Replicas, queue: Queue
) -> None:
    bucket = await cancel_bucket(queue.js)
    task_id = await failed_unstarted(replicas.first, queue, bucket)
    # As if NATS had not taken the mark: none in the bucket, the order kept.
    await bucket.delete(task_id)
    async with replicas.first.service.store.engine.begin() as connection:
        row = {"task_id": task_id, "reason": "FAILED: ATTEMPTS_EXHAUSTED", "try_time": utcnow()}
        await connection.execute(insert(pending_marks).values(row))
    held = replicas.hold(task_id, MARK)
    retry = round_of(replicas.first)
    await held.until_reached()

    await requeue(replicas.second, task_id)
    held.go.set()
    await retry

    await requeued_and_published(queue, replicas.first, task_id)
    assert await kept(replicas.first) == 0


async def test_a_kept_withdrawals_retry_landing_after_a_cancels_mark_leaves_it_marked(
    replicas: Replicas, queue: Queue
) -> None:
    bucket = await cancel_bucket(queue.js)
    task_id = await failed_unstarted(replicas.first, queue, bucket)
    refused = replicas.hold(task_id, DELETE, refused=True)
    await requeue(replicas.first, task_id)
    assert refused.reached.is_set()
    assert await kept(replicas.first) == 1
    held = replicas.hold(task_id, DELETE)
    retry = round_of(replicas.first)
    await held.until_reached()

    assert (await replicas.second.cancel(task_id)).status == CANCELLED
    held.go.set()
    await retry

    assert await end_mark(bucket, task_id) == "CANCELLED"
    assert await kept(replicas.first) == 0
