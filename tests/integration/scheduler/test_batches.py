"""CreateTasks on the real nats-server and SQLite: per-item errors, one write, every task
published before the answer, quotas and idempotency keys as for CreateTask."""

from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.queue import TASK_STREAM, Priority, task_subject
from farm_core.quotas import TenantQuotas
from tests.helpers import task_spec
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import QUEUED, Scheduler, rpc_error

pytestmark = pytest.mark.integration


def errors_by_index(response: tasks_pb2.CreateTasksResponse) -> dict[int, tuple[str, str]]:
    """Each refused item's (code, field), by index."""
    return {error.index: (error.code, error.field) for error in response.errors}


async def published_ids(queue: Queue, count: int) -> set[str]:
    """The task ids of the next `count` WorkItems an agent pulls."""
    return {(await queue.take()).task_id for _ in range(count)}


async def test_a_batch_queues_the_valid_items_and_names_each_bad_ones_index_and_field(
    scheduler: Scheduler, queue: Queue
) -> None:
    specs = [
        task_spec(labels={"item": "0"}),
        task_spec(url="ftp://example.com/"),
        task_spec(labels={"item": "2"}, priority="PRIORITY_HIGH"),
        task_spec(timeoutMs=5),
        task_spec(screenshot=None, script={"source": "() => 1"}),
        task_spec(labels={"item": "5"}),
    ]

    response = await scheduler.create_batch(specs)

    assert [task.spec.labels["item"] for task in response.tasks] == ["0", "2", "5"]
    assert {task.status for task in response.tasks} == {QUEUED}
    assert errors_by_index(response) == {
        1: ("INVALID_ARGUMENT", "requests[1].url"),
        3: ("INVALID_ARGUMENT", "requests[3].timeoutMs"),
        4: ("PERMISSION_DENIED", "requests[4]"),
    }
    assert response.errors[0].message.startswith("requests[1].url: ")
    assert "script" in response.errors[2].message
    listed = await scheduler.list_tasks(page_size=100)
    assert {task.id for task in listed.tasks} == {task.id for task in response.tasks}


async def test_every_task_of_a_batch_is_in_jetstream_and_marked_so_when_it_answers(
    scheduler: Scheduler, queue: Queue
) -> None:
    response = await scheduler.create_batch([task_spec() for _ in range(50)])

    created = {task.id for task in response.tasks}
    assert len(created) == 50
    assert await queue.subjects() == {task_subject("", Priority.NORMAL): 50}
    store = scheduler.service.store
    assert all([(await store.get(scheduler.tenant, task_id)).published for task_id in created])
    last = await queue.js.get_last_msg(TASK_STREAM, task_subject("", Priority.NORMAL))
    item = queue_pb2.WorkItem.FromString(last.data or b"")
    # The last one stored: the republisher (every 0.2 s here) may have sent some first.
    assert (last.headers or {}).get("Nats-Msg-Id") == item.task_id
    assert item.task_id in created
    assert await published_ids(queue, 50) == created


async def test_a_batch_of_more_than_1000_items_is_refused_whole(scheduler: Scheduler) -> None:
    refused = await rpc_error(scheduler.create_batch([task_spec() for _ in range(1001)]))

    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.details() or "").startswith(
        "requests: holds 1001 task specs, at most 1000 are allowed in one call"
    )
    assert len((await scheduler.list_tasks(page_size=10)).tasks) == 0


async def test_an_empty_batch_is_refused(scheduler: Scheduler) -> None:
    refused = await rpc_error(scheduler.create_batch([]))

    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.details() or "").startswith("requests: is required")


async def test_a_batch_is_queued_up_to_the_queued_quota_and_the_rest_refused_item_by_item(
    scheduler: Scheduler, queue: Queue
) -> None:
    quotas = TenantQuotas(max_queued_tasks=5)
    await scheduler.create(quotas)

    response = await scheduler.create_batch(
        [task_spec() for _ in range(6)], scheduler.auth(quotas=quotas)
    )

    assert len(response.tasks) == 4
    assert errors_by_index(response) == {
        4: ("RESOURCE_EXHAUSTED", "requests[4]"),
        5: ("RESOURCE_EXHAUSTED", "requests[5]"),
    }
    assert response.errors[0].message.startswith(
        f"requests[4]: quota maxQueuedTasks: tenant {scheduler.tenant!r} has 5 queued tasks"
    )
    assert len((await scheduler.list_tasks(page_size=100)).tasks) == 5
    assert await queue.subjects() == {task_subject("", Priority.NORMAL): 5}


async def test_idempotency_keys_in_a_batch_give_the_earlier_task_or_the_earlier_items(
    scheduler: Scheduler, queue: Queue
) -> None:
    earlier = await scheduler.create(idempotencyKey="order-1")
    keyed: list[dict[str, Any]] = [
        {"idempotencyKey": "order-1"},
        {"idempotencyKey": "order-2"},
        {"idempotencyKey": "order-2"},
        {},
    ]

    response = await scheduler.create_batch([task_spec(**fields) for fields in keyed])

    ids = [task.id for task in response.tasks]
    assert ids[0] == earlier.id
    assert ids[1] == ids[2] != earlier.id
    assert len(set(ids)) == 3
    assert len((await scheduler.list_tasks(page_size=100)).tasks) == 3
    assert await queue.subjects() == {task_subject("", Priority.NORMAL): 3}


async def test_a_batch_counts_each_created_task_by_priority(scheduler: Scheduler) -> None:
    def created(priority: str) -> float:
        return REGISTRY.get_sample_value("farm_tasks_created_total", {"priority": priority}) or 0.0

    low, high = created("low"), created("high")
    # Identical specs share one spec object in the scheduler; the others each have their own.
    specs = [task_spec(priority="PRIORITY_LOW") for _ in range(5)]
    specs += [task_spec(priority="PRIORITY_HIGH", labels={"item": str(i)}) for i in range(3)]

    response = await scheduler.create_batch(specs)

    assert len(response.tasks) == 8
    assert created("low") == low + 5
    assert created("high") == high + 3
