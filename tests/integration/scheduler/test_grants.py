"""The scheduler's grants: each WorkItem carries one for its task (and its tenant's byte
quota), and an agent's event changes its task only with that task's grant."""

import pytest

from farm_core.errors import PermissionDenied
from farm_core.grants import TREE_PREFIX, GrantVerifier
from farm_core.quotas import TenantQuotas
from tests.helpers import TEST_GRANT_PUBLIC_KEY, assert_eventually, grant_for
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import (
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Scheduler,
    backdate,
    stored_spec,
    succeeded_result,
    until,
)

pytestmark = pytest.mark.integration

VERIFIER = GrantVerifier(TEST_GRANT_PUBLIC_KEY)


async def test_each_work_item_carries_its_tasks_grant_with_the_byte_quota(
    scheduler: Scheduler, queue: Queue
) -> None:
    task = await scheduler.create(TenantQuotas(max_artifact_bytes=5000))

    item = await queue.take()

    granted = VERIFIER.verify(item.upload_grant, task.id, scheduler.tenant, "grant")
    assert granted.max_artifact_bytes == 5000


async def test_a_batchs_work_items_share_one_signature_and_each_grant_is_its_tasks_alone(
    scheduler: Scheduler, queue: Queue
) -> None:
    response = await scheduler.create_batch([stored_spec() for _ in range(5)])
    tasks = {task.id for task in response.tasks}

    items = [await queue.take() for _ in tasks]

    assert {item.task_id for item in items} == tasks
    for item in items:
        assert item.upload_grant.startswith(TREE_PREFIX)
        assert VERIFIER.verify(item.upload_grant, item.task_id, scheduler.tenant, "grant")
        for other in tasks - {item.task_id}:
            with pytest.raises(PermissionDenied):
                VERIFIER.verify(item.upload_grant, other, scheduler.tenant, "grant")
    # One root token, signed once, for the whole batch.
    assert len({item.upload_grant.split(".", 3)[3] for item in items}) == 1


async def test_a_batch_tasks_event_moves_it_only_with_its_own_grant(
    scheduler: Scheduler, queue: Queue
) -> None:
    response = await scheduler.create_batch([stored_spec() for _ in range(2)])
    items = {item.task_id: item for item in [await queue.take(), await queue.take()]}
    first, second = (task.id for task in response.tasks)

    await queue.report(first, RUNNING, grant=items[second].upload_grant)
    await assert_eventually(queue.events_applied, message="events not applied")
    assert await scheduler.status(first) == QUEUED

    await queue.report(first, RUNNING, grant=items[first].upload_grant)
    await until(scheduler, first, RUNNING)


async def test_a_republished_task_carries_its_grant_and_quota_too(
    hand_run_scheduler: Scheduler, queue: Queue
) -> None:
    scheduler = hand_run_scheduler
    record, _ = await scheduler.service.store.create(
        scheduler.tenant, stored_spec(), TenantQuotas(max_artifact_bytes=700)
    )
    await backdate(scheduler.service.store, record.id)
    republisher = scheduler.service.republisher
    assert republisher is not None
    assert await republisher.republish_pending() == 1

    item = await queue.take()

    assert (
        VERIFIER.verify(item.upload_grant, record.id, scheduler.tenant, "grant").max_artifact_bytes
        == 700
    )


async def test_an_event_without_its_tasks_grant_changes_nothing(
    scheduler: Scheduler, queue: Queue
) -> None:
    task = await scheduler.create()
    other = await scheduler.create()
    await queue.report(task.id, RUNNING, grant="")
    await queue.report(task.id, SUCCEEDED, result=succeeded_result(), grant=grant_for(other.id, ""))
    await assert_eventually(queue.events_applied, message="events not applied")

    assert await scheduler.status(task.id) == QUEUED
    # The same events with the task's own grant do move it.
    await queue.report(task.id, RUNNING)
    await queue.report(task.id, SUCCEEDED, result=succeeded_result())
    await until(scheduler, task.id, SUCCEEDED)


async def test_a_report_of_an_attempt_another_agent_holds_changes_nothing(
    scheduler: Scheduler, queue: Queue
) -> None:
    task = await scheduler.create()
    await queue.report(task.id, RUNNING, 1, agent_id="agent-holder")
    await until(scheduler, task.id, RUNNING)

    await queue.report(task.id, SUCCEEDED, 1, agent_id="agent-thief", result=succeeded_result())
    await assert_eventually(queue.events_applied, message="events not applied")

    assert await scheduler.status(task.id) == RUNNING
