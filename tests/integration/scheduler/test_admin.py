"""AdminService over gRPC: the fleet from the agents' heartbeats, drain orders, dead-letter pages,
and who may call what."""

import grpc
import pytest

from farm.admin.v1 import admin_pb2
from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.queue import drain_subject
from tests.integration.scheduler.admin_calls import ADMIN, operator
from tests.integration.scheduler.agent_side import RPC_TIMEOUT, STARTED, Queue, beat
from tests.integration.scheduler.conftest import Scheduler, rpc_error, until

pytestmark = pytest.mark.integration


async def test_list_agents_shows_each_heartbeat_by_id(scheduler: Scheduler, queue: Queue) -> None:
    busy = await beat(queue, "host-b-2", region="eu", running_task_ids=["t1", "t2"])
    idle = await beat(queue, "host-a-1", draining=True)

    listed = await scheduler.admin.ListAgents(
        admin_pb2.ListAgentsRequest(), metadata=operator(scheduler), timeout=RPC_TIMEOUT
    )

    assert [agent.id for agent in listed.agents] == ["host-a-1", "host-b-2"]
    first, second = listed.agents
    assert (first.draining, first.concurrency, first.start_time) == (True, 2, STARTED)
    assert first.heartbeat_time == idle.heartbeat_time
    assert (second.region, list(second.running_task_ids)) == ("eu", ["t1", "t2"])
    assert second.heartbeat_time == busy.heartbeat_time


async def test_list_agents_of_an_empty_fleet_is_empty(scheduler: Scheduler) -> None:
    listed = await scheduler.admin.ListAgents(
        admin_pb2.ListAgentsRequest(), metadata=operator(scheduler), timeout=RPC_TIMEOUT
    )
    assert list(listed.agents) == []


async def test_drain_agent_sends_it_a_drain_notice(scheduler: Scheduler, queue: Queue) -> None:
    await beat(queue, "host-a-1")
    notices = await queue.nc.subscribe(drain_subject("host-a-1"))

    agent = await scheduler.admin.DrainAgent(
        admin_pb2.DrainAgentRequest(id="host-a-1"),
        metadata=operator(scheduler),
        timeout=RPC_TIMEOUT,
    )

    assert (agent.id, agent.draining) == ("host-a-1", True)
    notice = await notices.next_msg(timeout=RPC_TIMEOUT)
    assert queue_pb2.DrainNotice.FromString(notice.data).agent_id == "host-a-1"


@pytest.mark.parametrize("agent_id", ["host-gone", "*", "a b", "control.>"])
async def test_drain_of_an_unknown_agent_is_not_found(scheduler: Scheduler, agent_id: str) -> None:
    error = await rpc_error(
        scheduler.admin.DrainAgent(
            admin_pb2.DrainAgentRequest(id=agent_id),
            metadata=operator(scheduler),
            timeout=RPC_TIMEOUT,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_fleet_is_only_for_admins_of_the_bootstrap_tenant(
    scheduler: Scheduler, queue: Queue
) -> None:
    await beat(queue, "host-a-1")
    tenant_admin = scheduler.auth(ADMIN)

    for call in (
        scheduler.admin.ListAgents(
            admin_pb2.ListAgentsRequest(), metadata=tenant_admin, timeout=RPC_TIMEOUT
        ),
        scheduler.admin.DrainAgent(
            admin_pb2.DrainAgentRequest(id="host-a-1"), metadata=tenant_admin, timeout=RPC_TIMEOUT
        ),
    ):
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "only an admin of the bootstrap tenant" in (error.details() or "")


async def test_admin_methods_need_the_admin_scope(scheduler: Scheduler) -> None:
    # Even an operator's key needs the admin scope itself.
    no_admin = scheduler.auth("tasks.read", "tasks.write", operator=True)
    calls = (
        scheduler.admin.ListAgents(
            admin_pb2.ListAgentsRequest(), metadata=no_admin, timeout=RPC_TIMEOUT
        ),
        scheduler.admin.DrainAgent(
            admin_pb2.DrainAgentRequest(id="host-a-1"), metadata=no_admin, timeout=RPC_TIMEOUT
        ),
        scheduler.admin.ListDeadLetters(
            admin_pb2.ListDeadLettersRequest(), metadata=no_admin, timeout=RPC_TIMEOUT
        ),
        scheduler.admin.RequeueDeadLetter(
            admin_pb2.RequeueDeadLetterRequest(task_id="0" * 32),
            metadata=no_admin,
            timeout=RPC_TIMEOUT,
        ),
    )
    for call in calls:
        assert (await rpc_error(call)).code() == grpc.StatusCode.PERMISSION_DENIED


async def test_dead_letters_page_newest_first(scheduler: Scheduler, queue: Queue) -> None:
    failed = []
    for _ in range(3):
        task = await scheduler.create()
        error = tasks_pb2.TaskError(code="BLOCKED_URL")
        await queue.report(task.id, tasks_pb2.TASK_STATUS_RUNNING)
        await until(scheduler, task.id, tasks_pb2.TASK_STATUS_RUNNING, 1)
        await queue.report(task.id, tasks_pb2.TASK_STATUS_FAILED, error=error)
        await until(scheduler, task.id, tasks_pb2.TASK_STATUS_FAILED, 1)
        failed.append(task.id)
    await scheduler.create()  # Not a dead letter.

    ids: list[str] = []
    sizes: list[int] = []
    token = ""
    for _ in range(3):
        page = await scheduler.admin.ListDeadLetters(
            admin_pb2.ListDeadLettersRequest(page_size=2, page_token=token),
            metadata=scheduler.auth(ADMIN),
            timeout=RPC_TIMEOUT,
        )
        sizes.append(len(page.dead_letters))
        ids.extend(letter.task.id for letter in page.dead_letters)
        token = page.next_page_token
        if not token:
            break

    assert sizes == [2, 1]
    assert ids == failed[::-1]
    bad = await rpc_error(
        scheduler.admin.ListDeadLetters(
            admin_pb2.ListDeadLettersRequest(page_token="not-ours"),
            metadata=scheduler.auth(ADMIN),
            timeout=RPC_TIMEOUT,
        )
    )
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (bad.details() or "").startswith("pageToken: ")


async def test_an_operator_lists_and_requeues_every_tenants_dead_letters(
    scheduler: Scheduler, queue: Queue
) -> None:
    # `farm status` counts every tenant's dead letters and sends the operator to
    # `farm deadletter list`, which showed only the bootstrap tenant's.
    task = await scheduler.create()
    await queue.report(task.id, tasks_pb2.TASK_STATUS_RUNNING)
    await until(scheduler, task.id, tasks_pb2.TASK_STATUS_RUNNING, 1)
    error = tasks_pb2.TaskError(code="BLOCKED_URL")
    await queue.report(task.id, tasks_pb2.TASK_STATUS_FAILED, error=error)
    await until(scheduler, task.id, tasks_pb2.TASK_STATUS_FAILED, 1)
    root = scheduler.auth(ADMIN, tenant="root-of-the-farm", operator=True)

    page = await scheduler.admin.ListDeadLetters(
        admin_pb2.ListDeadLettersRequest(page_size=1000), metadata=root, timeout=RPC_TIMEOUT
    )
    assert task.id in [letter.task.id for letter in page.dead_letters]
    other = await scheduler.admin.ListDeadLetters(
        admin_pb2.ListDeadLettersRequest(page_size=1000),
        metadata=scheduler.auth(ADMIN, tenant="another-tenant"),
        timeout=RPC_TIMEOUT,
    )
    assert task.id not in [letter.task.id for letter in other.dead_letters]

    requeued = await scheduler.admin.RequeueDeadLetter(
        admin_pb2.RequeueDeadLetterRequest(task_id=task.id), metadata=root, timeout=RPC_TIMEOUT
    )
    assert requeued.status == tasks_pb2.TASK_STATUS_QUEUED
    assert requeued.tenant == scheduler.tenant
    unknown = await rpc_error(
        scheduler.admin.RequeueDeadLetter(
            admin_pb2.RequeueDeadLetterRequest(task_id="0" * 32), metadata=root, timeout=RPC_TIMEOUT
        )
    )
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
