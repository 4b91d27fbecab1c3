"""A task that ends while an attempt of it may still run is marked ended, with the reason.

An agent cut off from NATS (or stuck) keeps its attempt while the task is redelivered;
another agent fails the delivery it does not start (the deadline passed, the attempts
are used up), and the task ends. The scheduler marks such a task in the bucket of
ended tasks, which agents read before they start a delivery and storage before it
stores an upload. A task failed by its own attempt is not marked. Real nats-server,
scheduler and its event consumer.
"""

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core.shared_buckets import cancel_bucket
from tests.helpers import assert_eventually
from tests.integration.scheduler.admin_calls import requeue
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import FAILED, QUEUED, RUNNING, Scheduler, until
from tests.integration.scheduler.end_marks import end_mark, until_marked

pytestmark = pytest.mark.integration

STUCK = "agent-stuck"
OTHER = "agent-other"
SELECTOR = tasks_pb2.TaskError(code="SELECTOR_NOT_FOUND", message="no #missing")


@pytest.mark.parametrize(
    "code", ["DEADLINE_EXCEEDED", "ATTEMPTS_EXHAUSTED"], ids=["timed-out", "attempts-exhausted"]
)
async def test_task_failed_by_a_delivery_it_never_started_is_marked_with_its_reason(
    scheduler: Scheduler, queue: Queue, code: str
) -> None:
    bucket = await cancel_bucket(queue.js)
    task = await scheduler.create(maxAttempts=1)
    await queue.report(task.id, RUNNING, 1, agent_id=STUCK)
    await until(scheduler, task.id, RUNNING, 1)

    # The stuck attempt's delivery lapsed; another agent does not start delivery 2.
    error = tasks_pb2.TaskError(code=code, message="not started")
    await queue.report(task.id, FAILED, 2, agent_id=OTHER, error=error)

    ended = await until(scheduler, task.id, FAILED)
    assert ended.error.code == code
    await until_marked(bucket, task.id, f"FAILED: {code}")


async def test_task_failed_by_its_own_attempt_is_not_marked(
    scheduler: Scheduler, queue: Queue
) -> None:
    bucket = await cancel_bucket(queue.js)
    task = await scheduler.create(maxAttempts=1)
    await queue.report(task.id, RUNNING, 1, agent_id=OTHER)
    await queue.report(task.id, FAILED, 1, agent_id=OTHER, error=SELECTOR)

    await until(scheduler, task.id, FAILED)
    await assert_eventually(queue.events_applied, message="events not applied")
    assert await end_mark(bucket, task.id) is None


async def test_cancel_is_marked_cancelled(scheduler: Scheduler, queue: Queue) -> None:
    bucket = await cancel_bucket(queue.js)
    task = await scheduler.create()

    await scheduler.cancel(task.id)

    assert await end_mark(bucket, task.id) == "CANCELLED"


async def test_requeued_task_loses_its_mark_and_is_published_again(
    scheduler: Scheduler, queue: Queue
) -> None:
    bucket = await cancel_bucket(queue.js)
    task = await scheduler.create(maxAttempts=1)
    await queue.take()
    await queue.report(task.id, RUNNING, 1, agent_id=STUCK)
    await until(scheduler, task.id, RUNNING, 1)
    exhausted = tasks_pb2.TaskError(code="ATTEMPTS_EXHAUSTED", message="not started")
    await queue.report(task.id, FAILED, 2, agent_id=OTHER, error=exhausted)
    await until_marked(bucket, task.id, "FAILED: ATTEMPTS_EXHAUSTED")

    await requeue(scheduler, task.id)

    assert await end_mark(bucket, task.id) is None
    assert (await queue.take()).task_id == task.id
    assert (await scheduler.get(task.id)).status == QUEUED
