"""The limits an attempt passes answer with a lease, a typed Busy, or nothing to limit."""

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import nats.errors
import pytest
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from farm_agent.limits.attempt_limits import AttemptLimits
from farm_agent.limits.breakers import BreakerBoard
from farm_agent.limits.circuit import BreakerPolicy
from farm_agent.limits.leases import Busy, Lease, SlotLimiter, Unreadable
from farm_agent.limits.slots import SlotLimits
from farm_agent.settings import AgentSettings

ONE_AT_A_TIME = SlotLimits(max_concurrency=1, max_rate=None, lease_seconds=30)


class MemoryBucket:
    """A key-value bucket in memory, with the revisions compare-and-set relies on."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[bytes, int]] = {}
        self.revision = 0

    async def get(self, key: str) -> SimpleNamespace:
        if key not in self.entries:
            raise KeyNotFoundError
        value, revision = self.entries[key]
        return SimpleNamespace(value=value, revision=revision)

    async def create(self, key: str, value: bytes) -> int:
        if key in self.entries:
            raise KeyWrongLastSequenceError("exists")
        return self._put(key, value)

    async def update(self, key: str, value: bytes, last: int) -> int:
        if self.entries.get(key, (b"", 0))[1] != last:
            raise KeyWrongLastSequenceError("changed")
        return self._put(key, value)

    def _put(self, key: str, value: bytes) -> int:
        self.revision += 1
        self.entries[key] = (value, self.revision)
        return self.revision


class UnreachableBucket:
    """A bucket whose server does not answer."""

    async def get(self, key: str) -> SimpleNamespace:
        raise nats.errors.TimeoutError

    async def create(self, key: str, value: bytes) -> int:
        raise nats.errors.TimeoutError

    async def update(self, key: str, value: bytes, last: int) -> int:
        raise nats.errors.TimeoutError


@pytest.fixture
async def held() -> AsyncIterator[list[Lease]]:
    """Leases a test took; given back when it ends, so no renewal outlives it."""
    leases: list[Lease] = []
    yield leases
    for lease in leases:
        await lease.release()


def attempt_limits(tmp_path: Path, tenants: object) -> AttemptLimits:
    """The limits on buckets in memory, the tenants' bucket as given."""
    settings = AgentSettings(FARM_HOME=str(tmp_path))
    breakers = BreakerBoard(MemoryBucket(), BreakerPolicy(3, 30))  # type: ignore[arg-type]
    hosts = SlotLimiter(MemoryBucket(), "host")  # type: ignore[arg-type]
    tenant_limits = SlotLimiter(tenants, "tenant")  # type: ignore[arg-type]
    return AttemptLimits(breakers, hosts, tenant_limits, settings)


async def test_a_full_key_answers_busy_with_how_long_to_wait(held: list[Lease]) -> None:
    limiter = SlotLimiter(MemoryBucket(), "host")  # type: ignore[arg-type]
    first = await limiter.acquire("example.test", ONE_AT_A_TIME, 0)
    assert isinstance(first, Lease)
    held.append(first)

    second = await limiter.acquire("example.test", ONE_AT_A_TIME, 0)

    assert isinstance(second, Busy)
    assert second.retry_after_seconds > 0


async def test_an_unreachable_bucket_answers_unreadable_naming_the_entry_and_the_error() -> None:
    limiter = SlotLimiter(UnreachableBucket(), "host", bucket="farm_host_slots")  # type: ignore[arg-type]
    answer = await limiter.acquire("example.test", ONE_AT_A_TIME, 5)
    assert answer == Unreadable(
        "entry 'example.test' of NATS KV bucket farm_host_slots could not be read: nats: timeout",
        lasting=False,
    )


async def test_a_bucket_unanswered_while_nats_is_down_is_a_wait_not_a_failure() -> None:
    limiter = SlotLimiter(
        UnreachableBucket(),  # type: ignore[arg-type]
        "host",
        bucket="farm_host_slots",
        nats_connected=lambda: False,
    )
    answer = await limiter.acquire("example.test", ONE_AT_A_TIME, 5)
    assert isinstance(answer, Busy)
    assert answer.retry_after_seconds > 0


async def test_a_key_nats_cannot_route_is_unreadable_for_good() -> None:
    limiter = SlotLimiter(UnreachableBucket(), "host")  # type: ignore[arg-type]
    answer = await limiter.acquire("a..b", ONE_AT_A_TIME, 5)
    assert isinstance(answer, Unreadable)
    assert answer.lasting


@pytest.mark.parametrize(("tenant", "max_running"), [("acme", 0), ("", 3), ("bad tenant", 3)])
async def test_a_tenant_without_a_usable_limit_takes_no_slot(
    tmp_path: Path, tenant: str, max_running: int
) -> None:
    limits = attempt_limits(tmp_path, tenants=UnreachableBucket())
    assert await limits.tenant_slot(tenant, max_running) is None


async def test_a_tenant_at_its_limit_is_busy_at_once(tmp_path: Path, held: list[Lease]) -> None:
    limits = attempt_limits(tmp_path, tenants=MemoryBucket())
    first = await limits.tenant_slot("acme", 1)
    assert isinstance(first, Lease)
    held.append(first)
    assert isinstance(await limits.tenant_slot("acme", 1), Busy)
    other = await limits.tenant_slot("other", 1)
    assert isinstance(other, Lease)
    held.append(other)


async def test_a_task_without_a_host_meets_no_breaker_and_no_host_limit(tmp_path: Path) -> None:
    limits = attempt_limits(tmp_path, tenants=MemoryBucket())
    admission = await limits.admit_to_origin("", 30_000)
    assert admission.allowed and not admission.is_trial
    assert await limits.host_slot("") is None
