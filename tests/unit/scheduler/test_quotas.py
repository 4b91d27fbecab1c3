"""Task quotas: at the queued quota a task is refused; the running quota never refuses."""

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from farm_core.errors import ResourceExhausted
from farm_core.quotas import TenantQuotas
from farm_core.tenant_locks import ADVISORY_NAMESPACE, TenantLocks, TenantQuotaLock, advisory_key
from farm_scheduler.quotas import MAX_INT32, check_task_quotas, running_limit


def test_below_the_queued_quota_a_task_is_accepted() -> None:
    check_task_quotas("acme", queued=2, quotas=TenantQuotas(3, 5, 0))


def test_at_the_queued_quota_a_task_is_refused_naming_it() -> None:
    with pytest.raises(ResourceExhausted, match=r"^quota maxQueuedTasks: tenant 'acme' has 3"):
        check_task_quotas("acme", queued=3, quotas=TenantQuotas(3, 5, 0))


def test_the_running_quota_refuses_no_task() -> None:
    check_task_quotas("acme", queued=0, quotas=TenantQuotas(3, 1, 0))


def test_a_zero_quota_is_unlimited() -> None:
    check_task_quotas("acme", queued=10**6, quotas=TenantQuotas())


@pytest.mark.parametrize(
    ("quotas", "limit"),
    [
        (None, 0),
        (TenantQuotas(), 0),
        (TenantQuotas(max_running_tasks=7), 7),
        (TenantQuotas(max_running_tasks=2**40), MAX_INT32),
    ],
)
def test_a_task_carries_the_running_quota_as_an_int32(
    quotas: TenantQuotas | None, limit: int
) -> None:
    assert running_limit(quotas) == limit


def test_advisory_keys_are_stable_int32s_that_tell_tenants_apart() -> None:
    keys = {advisory_key(f"tenant-{index}") for index in range(1000)}
    assert len(keys) == 1000
    assert all(-(2**31) <= key < 2**31 for key in keys)
    assert advisory_key("acme") == advisory_key("acme")


async def test_tenant_locks_serialise_one_tenant_and_are_dropped_when_free() -> None:
    locks = TenantLocks()
    inside, most_inside = 0, 0

    async def hold(tenant: str) -> None:
        nonlocal inside, most_inside
        async with locks.hold(tenant):
            inside += 1
            most_inside = max(most_inside, inside)
            # Not a wait for anything: the lock is held across a suspension, so the
            # others would come in now if it let them.
            await asyncio.sleep(0.001)
            inside -= 1

    await asyncio.gather(*(hold("acme") for _ in range(20)))
    assert most_inside == 1
    assert len(locks) == 0


async def test_tenant_locks_let_other_tenants_through() -> None:
    locks = TenantLocks()
    async with locks.hold("acme"):
        async with asyncio.timeout(1):
            async with locks.hold("globex"):
                assert len(locks) == 2
    assert len(locks) == 0


async def test_quota_transactions_of_one_tenant_on_sqlite_run_one_at_a_time(
    tmp_path: Path,
) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'quota.db'}")
    quota_lock = TenantQuotaLock(engine, ADVISORY_NAMESPACE)
    inside: dict[str, int] = {"acme": 0, "globex": 0}
    most_inside: dict[str, int] = {"acme": 0, "globex": 0}

    async def count(tenant: str) -> None:
        async with quota_lock.transaction(tenant) as connection:
            inside[tenant] += 1
            most_inside[tenant] = max(most_inside[tenant], inside[tenant])
            await connection.execute(text("SELECT 1"))
            # Not a wait for anything: the transaction stays open a moment, so the
            # others would come in now if the lock let them.
            await asyncio.sleep(0.01)
            inside[tenant] -= 1

    try:
        async with asyncio.timeout(10):
            await asyncio.gather(*(count(tenant) for tenant in ["acme", "globex"] * 5))
    finally:
        await engine.dispose()

    assert most_inside == {"acme": 1, "globex": 1}
