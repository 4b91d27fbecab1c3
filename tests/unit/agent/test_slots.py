"""Farm-wide slots: leases that lapse, a token bucket for host starts, none for tenants."""

import pytest

from farm_agent.kv import host_key, is_valid_key, tenant_key
from farm_agent.limits.slots import BUSY_RECHECK_SECONDS, SlotLimits, Slots

LIMITS = SlotLimits(max_concurrency=2, max_rate=10, lease_seconds=30)


def take_all(slots: Slots, count: int, now: float) -> tuple[Slots, list[float]]:
    waits = []
    for index in range(count):
        slots, wait = slots.take(f"lease-{index}", now, LIMITS)
        waits.append(wait)
    return slots, waits


def test_at_most_k_leases_are_held_at_once() -> None:
    slots, waits = take_all(Slots.fresh(0, LIMITS), 3, now=0)
    assert waits[:2] == [0, 0]
    assert 0 < waits[2] <= BUSY_RECHECK_SECONDS
    assert sorted(slots.leases) == ["lease-0", "lease-1"]


def test_a_lease_given_back_frees_its_slot() -> None:
    slots, _ = take_all(Slots.fresh(0, LIMITS), 2, now=0)
    slots = slots.give_back("lease-0", 1, LIMITS)
    slots, wait = slots.take("late", 1, LIMITS)
    assert wait == 0
    assert sorted(slots.leases) == ["late", "lease-1"]


def test_a_lease_that_is_not_renewed_lapses() -> None:
    slots, _ = take_all(Slots.fresh(0, LIMITS), 2, now=0)
    _, wait = slots.take("late", 29, LIMITS)
    assert wait > 0
    slots, wait = slots.take("late", 31, LIMITS)
    assert wait == 0
    assert list(slots.leases) == ["late"]


def test_a_renewed_lease_lives_on() -> None:
    slots, _ = take_all(Slots.fresh(0, LIMITS), 1, now=0)
    slots = slots.renew("lease-0", 20, LIMITS)
    assert slots.current(40, LIMITS).leases == {"lease-0": 50}


def test_starts_are_limited_to_the_rate_after_a_burst_of_one_seconds_worth() -> None:
    limits = SlotLimits(max_concurrency=100, max_rate=10, lease_seconds=30)
    slots = Slots.fresh(0, limits)
    for index in range(10):
        slots, wait = slots.take(f"burst-{index}", 0, limits)
        assert wait == 0
    _, wait = slots.take("eleventh", 0, limits)
    assert wait == pytest.approx(0.1)
    slots, wait = slots.take("eleventh", 0.1, limits)
    assert wait == 0
    _, wait = slots.take("twelfth", 0.15, limits)
    assert wait == pytest.approx(0.05)


@pytest.mark.parametrize("rate", [0.5, 2.0, 10.0])
def test_starts_in_any_window_stay_within_burst_plus_rate(rate: float) -> None:
    limits = SlotLimits(max_concurrency=1000, max_rate=rate, lease_seconds=30)
    slots, now = Slots.fresh(0, limits), 0.0
    starts: list[float] = []
    while now < 20:
        slots, wait = slots.take(f"t{len(starts)}", now, limits)
        if wait == 0:
            starts.append(now)
        now += 0.01
    for start in starts:
        in_window = [other for other in starts if start <= other < start + 1]
        assert len(in_window) <= limits.burst + rate + 1e-9


def test_a_slow_clock_never_refills_tokens() -> None:
    slots = Slots(tokens=0, refilled_at=100)
    assert slots.current(90, LIMITS).tokens == 0


def test_slots_survive_their_trip_through_the_bucket() -> None:
    slots, _ = take_all(Slots.fresh(0, LIMITS), 2, now=0)
    assert Slots.from_bytes(slots.to_bytes()) == slots


def test_garbage_in_the_bucket_is_not_a_slots_record() -> None:
    with pytest.raises(ValueError, match="not a slots record"):
        Slots.from_bytes(b"[]")


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://Example.COM:8443/path?q=1", "example.com"),
        ("http://127.0.0.1:8080/", "127.0.0.1"),
        ("http://[::1]:9/", "__1"),
        ("http://example.com./", "example.com"),
        ("http://a..b/", "a.b"),
        ("http://a...b.:80/", "a.b"),
        ("not a url", ""),
    ],
)
def test_a_hosts_key_is_its_lower_case_name_without_the_port(url: str, key: str) -> None:
    assert host_key(url) == key
    assert key == "" or is_valid_key(key)


TENANT_LIMITS = SlotLimits(max_concurrency=2, max_rate=None, lease_seconds=30)


def test_without_a_rate_any_number_of_starts_fit_while_slots_are_free() -> None:
    slots = Slots.fresh(0, TENANT_LIMITS)
    for index in range(50):
        slots, wait = slots.take(f"run-{index}", float(index), TENANT_LIMITS)
        assert wait == 0
        slots = slots.give_back(f"run-{index}", float(index), TENANT_LIMITS)
    assert (slots.leases, slots.tokens) == ({}, 0)


def test_without_a_rate_the_concurrency_still_holds() -> None:
    slots = Slots.fresh(0, TENANT_LIMITS)
    slots, first = slots.take("a", 0, TENANT_LIMITS)
    slots, second = slots.take("b", 0, TENANT_LIMITS)
    slots, third = slots.take("c", 0, TENANT_LIMITS)
    assert (first, second) == (0, 0)
    assert 0 < third <= BUSY_RECHECK_SECONDS
    assert sorted(slots.leases) == ["a", "b"]
    assert Slots.from_bytes(slots.to_bytes()) == slots


def test_a_lower_limit_passed_later_is_kept_by_the_same_slots() -> None:
    slots, _ = Slots.fresh(0, TENANT_LIMITS).take("a", 0, TENANT_LIMITS)
    one = SlotLimits(max_concurrency=1, max_rate=None, lease_seconds=30)
    _, wait = slots.take("b", 1, one)
    assert wait > 0


@pytest.mark.parametrize(("tenant", "key"), [("acme", "acme"), ("team-7", "team-7"), ("", "")])
def test_a_tenants_key_is_its_name(tenant: str, key: str) -> None:
    assert tenant_key(tenant) == key


def test_a_tenant_name_that_cannot_be_a_key_has_none() -> None:
    assert tenant_key("a b*") == ""


@pytest.mark.parametrize("key", ["a..b", ".a", "a.", "a b", ""])
def test_a_key_nats_would_refuse_is_not_valid(key: str) -> None:
    assert not is_valid_key(key)
