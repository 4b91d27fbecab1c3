"""CancelTasks cancels in bulk: a few transactions for the rows, NATS writes together.

What each id comes to is what CancelTask makes of it: a queued task's mark and its
message gone from FARM_TASKS, a running task's agent told, an ended task unchanged,
another tenant's task NOT_FOUND. A chunk of rows is one transaction, not one a task.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from nats.js.errors import KeyNotFoundError
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core import task_ends
from farm_core.queue import Priority, cancel_subject, task_subject
from farm_core.shared_buckets import cancel_bucket
from farm_scheduler.cancel_rows import CANCEL_CHUNK
from tests.helpers import task_spec
from tests.integration.scheduler.agent_side import RPC_TIMEOUT, Queue
from tests.integration.scheduler.conftest import (
    BOTH_DATABASES,
    CANCELLED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Scheduler,
    counted,
    sample,
    succeeded_result,
    until,
)

pytestmark = [pytest.mark.integration, BOTH_DATABASES]

NOWHERE = "nowhere"
"""A region no agent serves: its tasks stay queued, their messages in FARM_TASKS."""
QUEUED_COUNT = 40


class SwapTransactions:
    """Counts the committed transactions that swapped a task's row (a state change)."""

    def __init__(self) -> None:
        self.count = 0
        self._swapping: set[int] = set()

    def statement(self, conn: Connection, cursor: Any, statement: str, *rest: Any) -> None:
        # The compare-and-set of task_rows.SWAP_TASK: an UPDATE of tasks on the revision.
        if statement.startswith("UPDATE tasks SET") and "tasks.revision =" in statement:
            self._swapping.add(id(conn))

    def commit(self, conn: Connection) -> None:
        if id(conn) in self._swapping:
            self._swapping.discard(id(conn))
            self.count += 1


@pytest.fixture
def swaps(scheduler: Scheduler) -> Iterator[SwapTransactions]:
    """The scheduler's transactions that change task states, counted while the test runs."""
    engine: AsyncEngine = scheduler.service.store.engine
    counter = SwapTransactions()
    event.listen(engine.sync_engine, "before_cursor_execute", counter.statement)
    event.listen(engine.sync_engine, "commit", counter.commit)
    yield counter
    event.remove(engine.sync_engine, "before_cursor_execute", counter.statement)
    event.remove(engine.sync_engine, "commit", counter.commit)


async def cancel_tasks(scheduler: Scheduler, ids: list[str]) -> tasks_pb2.CancelTasksResponse:
    """CancelTasks of `ids` as the test's tenant."""
    response: tasks_pb2.CancelTasksResponse = await scheduler.tasks.CancelTasks(
        tasks_pb2.CancelTasksRequest(ids=ids), metadata=scheduler.auth(), timeout=RPC_TIMEOUT
    )
    return response


async def queued_nowhere(scheduler: Scheduler, count: int) -> list[str]:
    """The ids of `count` tasks queued by one CreateTasks where no agent serves."""
    created = await scheduler.create_batch([task_spec(region=NOWHERE) for _ in range(count)])
    assert list(created.errors) == []
    return [task.id for task in created.tasks]


async def test_a_batch_is_one_transaction_and_each_id_comes_to_what_cancel_task_makes_of_it(
    scheduler: Scheduler, queue: Queue, swaps: SwapTransactions
) -> None:
    running = await scheduler.create()
    assert (await queue.take()).task_id == running.id
    await queue.report(running.id, RUNNING)
    await until(scheduler, running.id, RUNNING)
    done = await scheduler.create()
    await queue.report(done.id, SUCCEEDED, result=succeeded_result())
    succeeded = await until(scheduler, done.id, SUCCEEDED)
    others = await scheduler.create(metadata=scheduler.auth(tenant="another-tenant"))
    queued = await queued_nowhere(scheduler, QUEUED_COUNT)
    nowhere = task_subject(NOWHERE, Priority.NORMAL)
    assert (await queue.subjects())[nowhere] == QUEUED_COUNT
    notices = await queue.nc.subscribe(cancel_subject(running.id))
    finished = sample("farm_tasks_finished_total", status="cancelled")
    swaps.count = 0

    batch = [*queued, running.id, done.id, others.id, queued[0]]
    answer = await cancel_tasks(scheduler, batch)

    assert swaps.count == 1  # One a task without the bulk path.
    assert [task.id for task in answer.tasks] == [*queued, running.id, done.id, queued[0]]
    assert [task.status for task in answer.tasks] == [CANCELLED] * (QUEUED_COUNT + 1) + [
        SUCCEEDED,
        CANCELLED,
    ]
    assert answer.tasks[QUEUED_COUNT + 1] == succeeded
    assert list(answer.already_ended) == [done.id]
    assert [(error.index, error.code) for error in answer.errors] == [
        (QUEUED_COUNT + 2, "NOT_FOUND")
    ]
    # As CancelTask: the queued messages deleted, every cancelled task marked, the
    # running one's agent told, the other tenant's task untouched.
    assert nowhere not in await queue.subjects()
    bucket = await cancel_bucket(queue.js)
    for task_id in [*queued, running.id]:
        mark = await bucket.get(task_id)
        assert mark.value == task_ends.mark(task_ends.CANCELLED)
    with pytest.raises(KeyNotFoundError):
        await bucket.get(done.id)
    notice = await notices.next_msg(timeout=RPC_TIMEOUT)
    assert queue_pb2.CancelNotice.FromString(notice.data).task_id == running.id
    await notices.unsubscribe()
    await counted("farm_tasks_finished_total", finished + QUEUED_COUNT + 1, status="cancelled")
    other = await scheduler.get(others.id, metadata=scheduler.auth(tenant="another-tenant"))
    assert other.status == QUEUED


async def test_a_batch_longer_than_a_chunk_takes_a_transaction_a_chunk(
    scheduler: Scheduler, queue: Queue, swaps: SwapTransactions
) -> None:
    queued = await queued_nowhere(scheduler, CANCEL_CHUNK + 10)
    swaps.count = 0

    answer = await cancel_tasks(scheduler, queued)

    assert swaps.count == 2
    assert {task.status for task in answer.tasks} == {CANCELLED}
    assert [task.id for task in answer.tasks] == queued
    assert task_subject(NOWHERE, Priority.NORMAL) not in await queue.subjects()
