"""Task quotas at the API: maxQueuedTasks holds under concurrent creates; maxRunningTasks
refuses nothing and travels to the agents with each task."""

import asyncio

import grpc
import pytest

from farm_core.quotas import TenantQuotas
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import Scheduler, backdate, rpc_error, stored_spec

pytestmark = pytest.mark.integration

OK, EXHAUSTED = grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_concurrent_creates_never_pass_the_queued_quota(scheduler: Scheduler) -> None:
    codes = await scheduler.create_at_once(20, TenantQuotas(max_queued_tasks=5))

    assert sorted(codes, key=str) == sorted([OK] * 5 + [EXHAUSTED] * 15, key=str)
    listed = await scheduler.list_tasks(page_size=100)
    assert len(listed.tasks) == 5


async def test_concurrent_single_and_batch_creates_never_pass_the_queued_quota(
    scheduler: Scheduler,
) -> None:
    made = await scheduler.create_mixed_at_once(TenantQuotas(max_queued_tasks=5))

    listed = await scheduler.list_tasks(page_size=100)
    assert made == len(listed.tasks) == 5


async def test_repeats_of_one_idempotency_key_at_the_quota_get_the_one_task(
    scheduler: Scheduler,
) -> None:
    quotas = TenantQuotas(max_queued_tasks=1)

    # The last place goes to one of them; the others are repeats of it, not refusals.
    tasks = await asyncio.gather(
        *(scheduler.create(quotas, idempotencyKey="order-17") for _ in range(4))
    )

    assert len({task.id for task in tasks}) == 1
    refused = await rpc_error(scheduler.create(quotas, idempotencyKey="order-18"))
    assert refused.code() == EXHAUSTED


async def test_the_queued_quota_error_names_the_quota(scheduler: Scheduler) -> None:
    quotas = TenantQuotas(max_queued_tasks=1)
    await scheduler.create(quotas)

    refused = await rpc_error(scheduler.create(quotas))

    assert refused.code() == EXHAUSTED
    assert (refused.details() or "").startswith(
        f"quota maxQueuedTasks: tenant {scheduler.tenant!r} has 1 queued task, its quota is 1"
    )


async def test_concurrent_creates_fill_a_partly_used_quota_exactly(scheduler: Scheduler) -> None:
    quotas = TenantQuotas(max_queued_tasks=5)
    for _ in range(3):
        await scheduler.create(quotas)

    codes = await scheduler.create_at_once(10, quotas)

    assert sorted(codes, key=str) == sorted([OK] * 2 + [EXHAUSTED] * 8, key=str)
    listed = await scheduler.list_tasks(page_size=100)
    assert len(listed.tasks) == 5


async def test_a_tenant_over_a_lowered_quota_is_refused_with_its_true_queued_count(
    scheduler: Scheduler,
) -> None:
    for _ in range(4):
        await scheduler.create(TenantQuotas(max_queued_tasks=10))

    refused = await rpc_error(scheduler.create(TenantQuotas(max_queued_tasks=2)))
    batch = await scheduler.create_batch(
        [stored_spec(), stored_spec()], scheduler.auth(quotas=TenantQuotas(max_queued_tasks=2))
    )

    assert (refused.details() or "").startswith(
        f"quota maxQueuedTasks: tenant {scheduler.tenant!r} has 4 queued tasks, its quota is 2"
    )
    assert [error.message for error in batch.errors] == [
        f"requests[{index}]: quota maxQueuedTasks: tenant {scheduler.tenant!r} has 4 queued "
        "tasks, its quota is 2; wait for some to start or ask an operator to raise it"
        for index in range(2)
    ]


async def test_the_running_quota_refuses_no_task_and_rides_on_each_work_item(
    scheduler: Scheduler, queue: Queue
) -> None:
    quotas = TenantQuotas(max_queued_tasks=10, max_running_tasks=1)
    created = [await scheduler.create(quotas) for _ in range(3)]
    unlimited = await scheduler.create()

    items = {item.task_id: item for item in [await queue.take() for _ in range(4)]}
    assert [items[task.id].tenant_max_running for task in created] == [1, 1, 1]
    assert items[unlimited.id].tenant_max_running == 0


async def test_a_republished_task_keeps_its_tenants_running_quota(
    hand_run_scheduler: Scheduler, queue: Queue
) -> None:
    scheduler = hand_run_scheduler
    spec = stored_spec()
    # Stored but never published, as when NATS refused CreateTask's publish.
    record, _ = await scheduler.service.store.create(
        scheduler.tenant, spec, TenantQuotas(max_running_tasks=3)
    )
    await backdate(scheduler.service.store, record.id)
    republisher = scheduler.service.republisher
    assert republisher is not None

    assert await republisher.republish_pending() == 1

    item = await queue.take()
    assert (item.task_id, item.tenant_max_running) == (record.id, 3)
