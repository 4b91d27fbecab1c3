"""A cut-off agent's attempt, overtaken by a retry, cannot end, fail or retry its task.

An agent cut off from NATS keeps running its attempt; the task is redelivered after
the ack wait and a second attempt starts elsewhere. When the first agent is back, its
reports reach the scheduler through the real nats-server and its event consumer, as
in farm_agent: they go into the attempt history and move nothing else.
"""

import pytest

from farm.tasks.v1 import tasks_pb2
from tests.helpers import assert_eventually
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import (
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TIMEOUT,
    Scheduler,
    sample,
    succeeded_result,
    until,
)

pytestmark = pytest.mark.integration

CUT_OFF = "agent-cut-off"
RETRY = "agent-retry"
REFUSED = tasks_pb2.TaskError(
    code="INTERNAL",
    message="storing screenshot.png was refused: header.attempt: attempt 1 (work sequence 7) "
    "is not task 't''s running attempt: attempt 2 (work sequence 7) has stored artifacts since",
)
"""What the cut-off agent reports when storage refused its stale upload (final, not retryable)."""


def stale_result() -> tasks_pb2.TaskResult:
    """The cut-off attempt's result: artifacts of its own."""
    result = succeeded_result()
    result.artifacts[0].id = "art_stale"
    return result


async def overtaken(scheduler: Scheduler, queue: Queue) -> str:
    """A task whose attempt 1 (the cut-off agent's) was overtaken by attempt 2, running."""
    task = await scheduler.create(maxAttempts=3)
    await queue.report(task.id, RUNNING, 1, agent_id=CUT_OFF)
    await until(scheduler, task.id, RUNNING, 1)
    await queue.report(task.id, RUNNING, 2, agent_id=RETRY)
    await until(scheduler, task.id, RUNNING, 2)
    return task.id


@pytest.mark.parametrize(
    ("status", "fields"),
    [
        (SUCCEEDED, {"result": stale_result()}),
        (FAILED, {"error": REFUSED}),
        (QUEUED, {"error": TIMEOUT}),
    ],
    ids=["succeeded", "failed-upload-refused", "retrying"],
)
async def test_overtaken_attempt_report_leaves_the_running_retry_in_charge(
    scheduler: Scheduler,
    queue: Queue,
    status: tasks_pb2.TaskStatus.ValueType,
    fields: dict[str, object],
) -> None:
    task_id = await overtaken(scheduler, queue)
    name = tasks_pb2.TaskStatus.Name(status).removeprefix("TASK_STATUS_").lower()
    counted = (
        sample("farm_stale_attempt_events_total", status=name),
        sample("farm_dead_letters_total"),
        sample("farm_tasks_retried_total"),
    )

    if status == QUEUED:
        await queue.report(task_id, QUEUED, 1, agent_id=CUT_OFF, error=TIMEOUT)
    else:
        await queue.report(task_id, status, 1, agent_id=CUT_OFF, **fields)  # type: ignore[arg-type]
    await assert_eventually(queue.events_applied, message="the stale report was not applied")

    task = await scheduler.get(task_id)
    assert (task.status, task.attempts, task.agent_id) == (RUNNING, 2, RETRY)
    assert not task.HasField("result") and not task.HasField("error")
    first, second = task.attempt_history
    assert (first.attempt, first.agent_id, first.HasField("finish_time")) == (1, CUT_OFF, True)
    assert first.error == fields.get("error", tasks_pb2.TaskError())
    assert (second.attempt, second.agent_id, second.HasField("finish_time")) == (2, RETRY, False)
    assert (
        sample("farm_stale_attempt_events_total", status=name),
        sample("farm_dead_letters_total"),
        sample("farm_tasks_retried_total"),
    ) == (counted[0] + 1, counted[1], counted[2])

    await queue.report(task_id, SUCCEEDED, 2, agent_id=RETRY, result=succeeded_result())
    done = await until(scheduler, task_id, SUCCEEDED, 2)
    assert (done.agent_id, done.result) == (RETRY, succeeded_result())
    assert not done.HasField("error")


async def test_event_without_an_attempt_number_is_applied_as_before(
    scheduler: Scheduler, queue: Queue
) -> None:
    """An agent that sends no attempt number (attempt 0) is not taken for an overtaken one."""
    task_id = await overtaken(scheduler, queue)
    await queue.report(task_id, SUCCEEDED, 0, agent_id=CUT_OFF, result=stale_result())
    done = await until(scheduler, task_id, SUCCEEDED)
    assert done.result == stale_result()
