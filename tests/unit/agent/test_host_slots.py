"""Per-host politeness: concurrency leases that lapse and a token bucket for starts."""

import pytest

from farm_agent.buckets import host_key, is_valid_key
from farm_agent.host_slots import BUSY_RECHECK_SECONDS, HostLimits, HostSlots

LIMITS = HostLimits(max_concurrency=2, max_rate=10, lease_seconds=30)


def take_all(slots: HostSlots, count: int, now: float) -> tuple[HostSlots, list[float]]:
    waits = []
    for index in range(count):
        slots, wait = slots.take(f"lease-{index}", now, LIMITS)
        waits.append(wait)
    return slots, waits


def test_at_most_k_leases_are_held_at_once() -> None:
    slots, waits = take_all(HostSlots.fresh(0, LIMITS), 3, now=0)
    assert waits[:2] == [0, 0]
    assert 0 < waits[2] <= BUSY_RECHECK_SECONDS
    assert sorted(slots.leases) == ["lease-0", "lease-1"]


def test_a_lease_given_back_frees_its_slot() -> None:
    slots, _ = take_all(HostSlots.fresh(0, LIMITS), 2, now=0)
    slots = slots.give_back("lease-0", 1, LIMITS)
    slots, wait = slots.take("late", 1, LIMITS)
    assert wait == 0
    assert sorted(slots.leases) == ["late", "lease-1"]


def test_a_lease_that_is_not_renewed_lapses() -> None:
    slots, _ = take_all(HostSlots.fresh(0, LIMITS), 2, now=0)
    _, wait = slots.take("late", 29, LIMITS)
    assert wait > 0
    slots, wait = slots.take("late", 31, LIMITS)
    assert wait == 0
    assert list(slots.leases) == ["late"]


def test_a_renewed_lease_lives_on() -> None:
    slots, _ = take_all(HostSlots.fresh(0, LIMITS), 1, now=0)
    slots = slots.renew("lease-0", 20, LIMITS)
    assert slots.current(40, LIMITS).leases == {"lease-0": 50}


def test_starts_are_limited_to_the_rate_after_a_burst_of_one_seconds_worth() -> None:
    limits = HostLimits(max_concurrency=100, max_rate=10, lease_seconds=30)
    slots = HostSlots.fresh(0, limits)
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
    limits = HostLimits(max_concurrency=1000, max_rate=rate, lease_seconds=30)
    slots, now, starts = HostSlots.fresh(0, limits), 0.0, []
    while now < 20:
        slots, wait = slots.take(f"t{len(starts)}", now, limits)
        if wait == 0:
            starts.append(now)
        now += 0.01
    for start in starts:
        in_window = [other for other in starts if start <= other < start + 1]
        assert len(in_window) <= limits.burst + rate + 1e-9


def test_a_slow_clock_never_refills_tokens() -> None:
    slots = HostSlots(tokens=0, refilled_at=100)
    assert slots.current(90, LIMITS).tokens == 0


def test_slots_survive_their_trip_through_the_bucket() -> None:
    slots, _ = take_all(HostSlots.fresh(0, LIMITS), 2, now=0)
    assert HostSlots.from_bytes(slots.to_bytes()) == slots


def test_garbage_in_the_bucket_is_not_a_hosts_slots() -> None:
    with pytest.raises(ValueError, match="not a host's slots"):
        HostSlots.from_bytes(b"[]")


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://Example.COM:8443/path?q=1", "example.com"),
        ("http://127.0.0.1:8080/", "127.0.0.1"),
        ("http://[::1]:9/", "__1"),
        ("http://example.com./", "example.com"),
        ("not a url", ""),
    ],
)
def test_a_hosts_key_is_its_lower_case_name_without_the_port(url: str, key: str) -> None:
    assert host_key(url) == key
    assert key == "" or is_valid_key(key)
