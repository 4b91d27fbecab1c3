"""A tenant's task quotas: whether one more task may be accepted."""

from farm_core.errors import ResourceExhausted
from farm_core.quotas import TenantQuotas


def check_task_quotas(tenant: str, queued: int, running: int, quotas: TenantQuotas) -> None:
    """Raises ResourceExhausted naming the quota when `tenant` is at one (0 is unlimited)."""
    for quota, count, what, limit in (
        ("maxQueuedTasks", queued, "queued", quotas.max_queued_tasks),
        ("maxRunningTasks", running, "running", quotas.max_running_tasks),
    ):
        if limit and count >= limit:
            raise ResourceExhausted(
                f"quota {quota}: tenant {tenant!r} has {count} {what} tasks, its quota is "
                f"{limit}; wait for some to finish or ask an operator to raise it"
            )
