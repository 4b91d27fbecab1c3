"""A tenant's task quotas: at the quota a new task is refused, below it accepted."""

import pytest

from farm_core.errors import ResourceExhausted
from farm_core.quotas import TenantQuotas
from farm_scheduler.quotas import check_task_quotas


def test_below_each_quota_a_task_is_accepted() -> None:
    check_task_quotas("acme", queued=2, running=4, quotas=TenantQuotas(3, 5, 0))


def test_at_the_queued_quota_a_task_is_refused_naming_it() -> None:
    with pytest.raises(ResourceExhausted, match=r"^quota maxQueuedTasks: tenant 'acme' has 3"):
        check_task_quotas("acme", queued=3, running=0, quotas=TenantQuotas(3, 5, 0))


def test_at_the_running_quota_a_task_is_refused_naming_it() -> None:
    with pytest.raises(ResourceExhausted, match=r"^quota maxRunningTasks: "):
        check_task_quotas("acme", queued=0, running=5, quotas=TenantQuotas(3, 5, 0))


def test_a_zero_quota_is_unlimited() -> None:
    check_task_quotas("acme", queued=10**6, running=10**6, quotas=TenantQuotas())
