"""A tenant's task quotas: whether one more task may be accepted, and the limit it carries.

Only maxQueuedTasks refuses tasks. maxRunningTasks never does: each task carries it
to the agents (WorkItem.tenant_max_running), which hold the tenant's further tasks
queued while that many run.
"""

from farm_core.errors import ResourceExhausted
from farm_core.quotas import TenantQuotas

MAX_INT32 = 2**31 - 1


def quota_reached(
    quota: str, tenant: str, held: int, what: tuple[str, str], limit: int, advice: str
) -> ResourceExhausted:
    """The refusal of a tenant at its `quota`: what it holds (`what`: one, many) and the limit."""
    noun = what[0] if held == 1 else what[1]
    return ResourceExhausted(
        f"quota {quota}: tenant {tenant!r} has {held} {noun}, its quota is {limit}; {advice}"
    )


def check_task_quotas(tenant: str, queued: int, quotas: TenantQuotas) -> None:
    """Raises ResourceExhausted naming maxQueuedTasks when `tenant` is at it (0 is unlimited)."""
    limit = quotas.max_queued_tasks
    if limit and queued >= limit:
        raise quota_reached(
            "maxQueuedTasks",
            tenant,
            queued,
            ("queued task", "queued tasks"),
            limit,
            "wait for some to start or ask an operator to raise it",
        )


def running_limit(quotas: TenantQuotas | None) -> int:
    """The tenant's maxRunningTasks as a WorkItem carries it (an int32; 0 is unlimited)."""
    return min(quotas.max_running_tasks, MAX_INT32) if quotas is not None else 0


def queued_limit(quotas: TenantQuotas | None) -> TenantQuotas | None:
    """`quotas` when they limit the queued tasks (a create must check them), else None."""
    return quotas if quotas is not None and quotas.max_queued_tasks > 0 else None
