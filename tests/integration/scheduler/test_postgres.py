"""The scheduler on PostgreSQL: the same promises as on SQLite, on the other SQL dialect."""

import asyncio
from pathlib import Path

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core.db import async_database_url
from farm_scheduler.store import TaskStore
from farm_scheduler.validation import validate_spec
from tests.helpers import assert_eventually
from tests.integration.scheduler.conftest import (
    RPC_TIMEOUT,
    Queue,
    Scheduler,
    succeeded_result,
    task_spec,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """A fresh PostgreSQL database instead of SQLite."""
    return postgres_url


async def test_task_lifecycle_on_postgresql(scheduler: Scheduler, queue: Queue) -> None:
    task = await scheduler.create(labels={"job": "nightly"})
    item = await queue.take()
    assert item.task_id == task.id
    await queue.report(task.id, tasks_pb2.TASK_STATUS_RUNNING)
    await queue.report(task.id, tasks_pb2.TASK_STATUS_SUCCEEDED, result=succeeded_result())

    async def succeeded() -> bool:
        return await scheduler.status(task.id) == tasks_pb2.TASK_STATUS_SUCCEEDED

    await assert_eventually(succeeded, message="the task did not succeed")
    done = await scheduler.get(task.id)
    assert (done.attempts, done.result) == (1, succeeded_result())
    listed = await scheduler.tasks.ListTasks(
        tasks_pb2.ListTasksRequest(status=tasks_pb2.TASK_STATUS_SUCCEEDED, label=["job=nightly"]),
        metadata=scheduler.auth(),
        timeout=RPC_TIMEOUT,
    )
    assert [each.id for each in listed.tasks] == [task.id]


async def test_list_pages_and_idempotency_on_postgresql(scheduler: Scheduler, queue: Queue) -> None:
    created = [(await scheduler.create(idempotencyKey=f"k{i}")).id for i in range(5)]
    assert (await scheduler.create(idempotencyKey="k0")).id == created[0]
    assert (await scheduler.create()).id not in created
    assert (await scheduler.create()).id not in created

    first = await scheduler.tasks.ListTasks(
        tasks_pb2.ListTasksRequest(page_size=3),
        metadata=scheduler.auth(),
        timeout=RPC_TIMEOUT,
    )
    second = await scheduler.tasks.ListTasks(
        tasks_pb2.ListTasksRequest(page_size=3, page_token=first.next_page_token),
        metadata=scheduler.auth(),
        timeout=RPC_TIMEOUT,
    )
    third = await scheduler.tasks.ListTasks(
        tasks_pb2.ListTasksRequest(page_size=3, page_token=second.next_page_token),
        metadata=scheduler.auth(),
        timeout=RPC_TIMEOUT,
    )
    ids = [each.id for page in (first, second, third) for each in page.tasks]
    assert len(ids) == len(set(ids)) == 7
    assert ids[2:][::-1] == created
    assert third.next_page_token == ""


async def test_concurrent_creates_with_one_key_make_one_task(postgres_url: str) -> None:
    store = TaskStore(async_database_url(postgres_url, Path("unused.db")))
    await store.start()
    try:
        spec = validate_spec(
            task_spec(idempotencyKey="once"), max_attempts_cap=10, default_timeout_ms=30000
        )
        results = await asyncio.gather(*(store.create("acme", spec) for _ in range(8)))
    finally:
        await store.close()

    assert len({record.id for record, _ in results}) == 1
    assert sum(created for _, created in results) == 1
