"""The scheduler on PostgreSQL: the same promises as on SQLite, on the other SQL dialect."""

import asyncio
import datetime as dt
from pathlib import Path

import grpc
import pytest

from farm.admin.v1 import admin_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.db import async_database_url, utcnow
from farm_core.errors import NotFound
from farm_core.quotas import TenantQuotas
from farm_core.timestamps import to_timestamp
from farm_scheduler.store import TaskStore
from tests.helpers import assert_eventually, task_spec
from tests.integration.scheduler.agent_side import RPC_TIMEOUT, Queue
from tests.integration.scheduler.conftest import (
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TIMEOUT,
    Scheduler,
    StartScheduler,
    stored_spec,
    succeeded_result,
    until,
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
    listed = await scheduler.list_tasks(
        status=tasks_pb2.TASK_STATUS_SUCCEEDED, label=["job=nightly"]
    )
    assert [each.id for each in listed.tasks] == [task.id]


async def test_list_pages_and_idempotency_on_postgresql(scheduler: Scheduler, queue: Queue) -> None:
    created = [(await scheduler.create(idempotencyKey=f"k{i}")).id for i in range(5)]
    assert (await scheduler.create(idempotencyKey="k0")).id == created[0]
    assert (await scheduler.create()).id not in created
    assert (await scheduler.create()).id not in created

    first = await scheduler.list_tasks(page_size=3)
    second = await scheduler.list_tasks(page_size=3, page_token=first.next_page_token)
    third = await scheduler.list_tasks(page_size=3, page_token=second.next_page_token)
    ids = [each.id for page in (first, second, third) for each in page.tasks]
    assert len(ids) == len(set(ids)) == 7
    assert ids[2:][::-1] == created
    assert third.next_page_token == ""


async def test_concurrent_creates_with_one_key_make_one_task(postgres_url: str) -> None:
    store = TaskStore(async_database_url(postgres_url, Path("unused.db")))
    await store.start()
    try:
        spec = stored_spec(idempotencyKey="once")
        results = await asyncio.gather(*(store.create("acme", spec) for _ in range(8)))
    finally:
        await store.close()

    assert len({record.id for record, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_concurrent_creates_never_pass_the_queued_quota_on_postgresql(
    start_scheduler: StartScheduler,
) -> None:
    # Two replicas on one database: only the database's lock can serialise them.
    replicas = [await start_scheduler(), await start_scheduler()]
    quotas = TenantQuotas(max_queued_tasks=5)

    codes = [
        code
        for batch in await asyncio.gather(
            *(replica.create_at_once(10, quotas) for replica in replicas)
        )
        for code in batch
    ]

    assert codes.count(grpc.StatusCode.OK) == 5
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 15
    listed = await replicas[0].list_tasks(page_size=100)
    assert len(listed.tasks) == 5


async def test_concurrent_creates_fill_a_partly_used_quota_exactly_on_postgresql(
    start_scheduler: StartScheduler,
) -> None:
    replicas = [await start_scheduler(), await start_scheduler()]
    quotas = TenantQuotas(max_queued_tasks=5)
    for _ in range(3):
        await replicas[0].create(quotas)

    codes = [
        code
        for batch in await asyncio.gather(
            *(replica.create_at_once(6, quotas) for replica in replicas)
        )
        for code in batch
    ]

    assert codes.count(grpc.StatusCode.OK) == 2
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 10


async def test_concurrent_single_and_batch_creates_never_pass_the_queued_quota_on_postgresql(
    scheduler: Scheduler,
) -> None:
    made = await scheduler.create_mixed_at_once(TenantQuotas(max_queued_tasks=5))

    listed = await scheduler.list_tasks(page_size=100)
    assert made == len(listed.tasks) == 5


async def test_retries_dead_letters_requeue_and_deadlines_on_postgresql(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    scheduler = await start_scheduler(idempotency_window_seconds=1)
    task = await scheduler.create(maxAttempts=2, idempotencyKey="once")
    await queue.report(task.id, RUNNING, 1)
    await until(scheduler, task.id, RUNNING, 1)
    await queue.report(task.id, QUEUED, 1, error=TIMEOUT, retry_time=utcnow())
    retrying = await until(scheduler, task.id, QUEUED, 1)
    assert retrying.attempt_history[0].error == TIMEOUT and retrying.HasField("retry_time")
    await queue.report(task.id, RUNNING, 2)
    await until(scheduler, task.id, RUNNING, 2)
    await queue.report(task.id, FAILED, 2, error=TIMEOUT)
    await until(scheduler, task.id, FAILED, 2)

    letters = await scheduler.admin.ListDeadLetters(
        admin_pb2.ListDeadLettersRequest(), metadata=scheduler.auth("admin"), timeout=RPC_TIMEOUT
    )
    assert [letter.task.id for letter in letters.dead_letters] == [task.id]
    message = await queue.dead_letter(task.id)
    assert (message.headers or {}).get("Nats-Msg-Id") == f"{task.id}.dead.2"
    requeued = await scheduler.admin.RequeueDeadLetter(
        admin_pb2.RequeueDeadLetterRequest(task_id=task.id),
        metadata=scheduler.auth("admin"),
        timeout=RPC_TIMEOUT,
    )
    assert (requeued.status, requeued.attempts) == (QUEUED, 2)
    await queue.report(task.id, RUNNING, 1)
    await until(scheduler, task.id, RUNNING, 3)

    async def key_names_a_new_task() -> bool:
        return (await scheduler.create(maxAttempts=2, idempotencyKey="once")).id != task.id

    await assert_eventually(key_names_a_new_task, message="the key never named a new task")

    deadline = to_timestamp(utcnow() + dt.timedelta(seconds=1)).ToJsonString()
    expiring = await scheduler.create(deadline=deadline)
    expired = await until(scheduler, expiring.id, FAILED, 0)
    assert expired.error.code == "DEADLINE_EXCEEDED"


async def test_result_cache_on_postgresql(scheduler: Scheduler, queue: Queue) -> None:
    first = await scheduler.create()
    await queue.take()
    half_an_hour_ago = utcnow() - dt.timedelta(minutes=30)
    await queue.report(first.id, SUCCEEDED, result=succeeded_result(), time=half_an_hour_ago)
    await until(scheduler, first.id, SUCCEEDED)

    hit = await scheduler.create(labels={"job": "again"})
    too_old = await scheduler.create(cacheTtlSeconds=600)
    stranger = await scheduler.create(metadata=scheduler.auth(tenant="someone-else"))

    assert (hit.status, hit.cached, hit.result) == (SUCCEEDED, True, succeeded_result())
    assert (await scheduler.get(hit.id)).cached
    assert (too_old.status, too_old.cached) == (QUEUED, False)
    assert (stranger.status, stranger.cached) == (QUEUED, False)


async def test_concurrent_batches_on_postgresql_never_pass_the_queued_quota(
    scheduler: Scheduler, queue: Queue
) -> None:
    metadata = scheduler.auth(quotas=TenantQuotas(max_queued_tasks=6))
    batch = [stored_spec() for _ in range(5)]

    answers = await asyncio.gather(*(scheduler.create_batch(batch, metadata) for _ in range(3)))

    assert sum(len(answer.tasks) for answer in answers) == 6
    assert sum(len(answer.errors) for answer in answers) == 9
    assert {error.code for answer in answers for error in answer.errors} == {"RESOURCE_EXHAUSTED"}
    assert sum((await queue.subjects()).values()) == 6


async def test_replicas_starting_together_on_an_empty_database_all_start(
    postgres_url: str,
) -> None:
    # Without the migration lock one replica fails creating the version table the
    # others create at the same moment.
    url = async_database_url(postgres_url, Path("unused.db"))
    replicas = [TaskStore(url) for _ in range(3)]
    try:
        await asyncio.gather(*(replica.start() for replica in replicas))
        for replica in replicas:
            with pytest.raises(NotFound):
                await replica.get("acme", "no-such-task")
    finally:
        await asyncio.gather(*(replica.close() for replica in replicas))


async def test_a_batch_is_stored_published_and_marked_so_on_postgresql(
    scheduler: Scheduler, queue: Queue
) -> None:
    specs = [task_spec(labels={"item": str(index)}) for index in range(5)]

    response = await scheduler.create_batch(specs)

    created = {task.id: task.spec.labels["item"] for task in response.tasks}
    assert sorted(created.values()) == ["0", "1", "2", "3", "4"]
    assert {(await queue.take()).task_id for _ in specs} == set(created)
    store = scheduler.service.store
    for task_id, item in created.items():
        stored = await store.get(scheduler.tenant, task_id)
        assert stored.published and dict(stored.spec.labels) == {"item": item}
