"""The scheduler's admin calls as its tests make them: a tenant's admin, or the operator."""

from farm.admin.v1 import admin_pb2
from farm.tasks.v1 import tasks_pb2
from tests.integration.scheduler.agent_side import RPC_TIMEOUT
from tests.integration.scheduler.conftest import Scheduler

ADMIN = "admin"
"""The scope of a tenant's admin."""


def operator(scheduler: Scheduler) -> tuple[tuple[str, str], ...]:
    """Metadata of the operator: an admin of the bootstrap tenant."""
    return scheduler.auth(ADMIN, operator=True)


async def requeue(scheduler: Scheduler, task_id: str, tenant: str | None = None) -> tasks_pb2.Task:
    """RequeueDeadLetter of `task_id` by an admin of the test's tenant (or `tenant`)."""
    task: tasks_pb2.Task = await scheduler.admin.RequeueDeadLetter(
        admin_pb2.RequeueDeadLetterRequest(task_id=task_id),
        metadata=scheduler.auth(ADMIN, tenant=tenant),
        timeout=RPC_TIMEOUT,
    )
    return task
