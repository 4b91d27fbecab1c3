"""A task-ending event that reached JetStream late marks its task ended.

An agent that cannot publish its final event (nats-server down) gives up after a
while, its copy buffered by its NATS client; the copy is stored on reconnect, after
the task's delivery lapsed, and without the `redelivered` flag the agent sets only
when it knows of the lapse. The scheduler compares when JetStream stored the event
with when the agent built it and, past `late_event_seconds`, marks the task ended in
the bucket of ended tasks, so that its redelivery is acked unrun. Real nats-server,
scheduler and its event consumer.
"""

import datetime as dt

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core.db import utcnow
from farm_core.shared_buckets import cancel_bucket
from tests.helpers import assert_eventually
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import (
    RUNNING,
    SUCCEEDED,
    Scheduler,
    counted,
    sample,
    succeeded_result,
    until,
)
from tests.integration.scheduler.end_marks import end_mark, until_marked

pytestmark = pytest.mark.integration

AGENT = "agent-1"
LATE = dt.timedelta(seconds=40)
"""How long before it reaches JetStream the late event was built (past the ack wait)."""
LATE_EVENTS = "farm_late_final_events_total"


async def test_final_event_stored_late_marks_its_task_ended(
    scheduler: Scheduler, queue: Queue
) -> None:
    bucket = await cancel_bucket(queue.js)
    late_before = sample(LATE_EVENTS, status="succeeded")
    task = await scheduler.create()
    built = utcnow() - LATE
    await queue.report(task.id, RUNNING, 1, agent_id=AGENT, time=built - dt.timedelta(seconds=5))
    await queue.report(task.id, SUCCEEDED, 1, agent_id=AGENT, time=built, result=succeeded_result())

    await until(scheduler, task.id, SUCCEEDED, 1)
    await until_marked(bucket, task.id, "SUCCEEDED")
    await counted(LATE_EVENTS, late_before + 1, status="succeeded")


async def test_final_event_stored_promptly_leaves_its_task_unmarked(
    scheduler: Scheduler, queue: Queue
) -> None:
    bucket = await cancel_bucket(queue.js)
    late_before = sample(LATE_EVENTS, status="succeeded")
    task = await scheduler.create()
    await queue.report(task.id, RUNNING, 1, agent_id=AGENT)
    await queue.report(task.id, SUCCEEDED, 1, agent_id=AGENT, result=succeeded_result())

    await until(scheduler, task.id, SUCCEEDED, 1)
    await assert_eventually(queue.events_applied, message="events not applied")
    assert await end_mark(bucket, task.id) is None
    assert sample(LATE_EVENTS, status="succeeded") == late_before


async def test_late_copy_of_an_ended_tasks_event_marks_it(
    scheduler: Scheduler, queue: Queue
) -> None:
    bucket = await cancel_bucket(queue.js)
    task = await scheduler.create()
    await queue.report(task.id, RUNNING, 1, agent_id=AGENT)
    await queue.report(task.id, SUCCEEDED, 1, agent_id=AGENT, result=succeeded_result())
    await until(scheduler, task.id, SUCCEEDED, 1)
    late_before = sample(LATE_EVENTS, status="failed")

    # The task has ended: the late event changes nothing but the mark.
    error = tasks_pb2.TaskError(code="INTERNAL", message="late")
    await queue.report(
        task.id, tasks_pb2.TASK_STATUS_FAILED, 1, agent_id=AGENT, time=utcnow() - LATE, error=error
    )

    await until_marked(bucket, task.id, "SUCCEEDED")
    assert (await scheduler.get(task.id)).status == SUCCEEDED
    await counted(LATE_EVENTS, late_before + 1, status="failed")


async def test_late_end_of_an_overtaken_attempt_leaves_the_running_task_unmarked(
    scheduler: Scheduler, queue: Queue
) -> None:
    bucket = await cancel_bucket(queue.js)
    task = await scheduler.create()
    built = utcnow() - LATE
    await queue.report(task.id, RUNNING, 1, agent_id=AGENT, time=built - dt.timedelta(seconds=5))
    await queue.report(task.id, RUNNING, 2, agent_id="agent-2")
    await until(scheduler, task.id, RUNNING, 2)

    await queue.report(task.id, SUCCEEDED, 1, agent_id=AGENT, time=built, result=succeeded_result())

    await assert_eventually(queue.events_applied, message="events not applied")
    assert (await scheduler.get(task.id)).status == RUNNING
    assert await end_mark(bucket, task.id) is None
