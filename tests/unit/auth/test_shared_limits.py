"""The pure rules of the farm-wide limits: GCRA for rates, a windowed count for refusals."""

from farm_auth.rate_leases import HeldLease, lease_cap, next_lease_size, rate_decision, rate_lease
from farm_auth.shared_limits import FailureCount, FailureRule, after_failure, entry_key


def test_a_fresh_key_gets_its_burst_at_once_then_waits_one_interval() -> None:
    due = None
    for _ in range(3):
        decision = rate_decision(due, now=100.0, per_second=2, burst=3)
        assert decision.wait_seconds == 0.0
        due = decision.due
    refused = rate_decision(due, now=100.0, per_second=2, burst=3)
    assert refused.wait_seconds == 0.5
    assert refused.due == due  # a refusal does not move the due time
    assert rate_decision(due, now=100.5, per_second=2, burst=3).wait_seconds == 0.0


def test_an_idle_key_refills_to_its_burst_and_no_more() -> None:
    decision = rate_decision(50.0, now=1000.0, per_second=1, burst=2)
    assert decision.due == 1001.0
    second = rate_decision(decision.due, now=1000.0, per_second=1, burst=2)
    assert second.wait_seconds == 0.0
    assert rate_decision(second.due, now=1000.0, per_second=1, burst=2).wait_seconds > 0


def test_refusals_past_the_limit_block_and_a_new_window_starts_the_count_afresh() -> None:
    rule = FailureRule(limit=2, window_seconds=10, block_seconds=30)
    count: FailureCount | None = None
    for _ in range(2):
        count = after_failure(count, now=5.0, rule=rule)
    assert count is not None and count.blocked_until == 0.0
    count = after_failure(count, now=6.0, rule=rule)
    assert count.blocked_until == 36.0
    later = after_failure(count, now=20.0, rule=rule)
    assert (later.window_start, later.count, later.blocked_until) == (20.0, 1, 36.0)
    assert FailureCount.from_bytes(later.to_bytes()) == later


def test_entry_keys_are_valid_for_ipv6_addresses_and_key_ids() -> None:
    assert entry_key("::1") == "__1"
    assert entry_key("key_0a1b") == "key_0a1b"


def test_a_lease_takes_what_the_burst_leaves_and_a_full_one_is_refused() -> None:
    lease = rate_lease(None, now=100.0, per_second=10, burst=5, wanted=3)
    assert (lease.granted, lease.due) == (3, 100.3)
    rest = rate_lease(lease.due, now=100.0, per_second=10, burst=5, wanted=3)
    assert rest.granted == 2  # only two of the burst were left
    refused = rate_lease(rest.due, now=100.0, per_second=10, burst=5, wanted=3)
    assert refused.granted == 0
    assert abs(refused.wait_seconds - 0.1) < 1e-9
    assert refused.due == rest.due


def test_leases_grow_while_used_up_and_shrink_to_what_was_used_when_one_lapses() -> None:
    cap = lease_cap(per_second=1000, burst=5000, lease_seconds=0.1)
    assert cap == 100
    assert lease_cap(per_second=1, burst=3, lease_seconds=0.1) == 1
    assert next_lease_size(None, now=0.0, cap=cap) == 1
    used_up = HeldLease(left=0, until=1.0, size=8, rate=(1000, 5000))
    assert next_lease_size(used_up, now=0.5, cap=cap) == 16
    assert next_lease_size(HeldLease(0, 1.0, 80, (1000, 5000)), now=0.5, cap=cap) == 100
    lapsed = HeldLease(left=5, until=1.0, size=8, rate=(1000, 5000))
    assert next_lease_size(lapsed, now=1.5, cap=cap) == 3
    assert not lapsed.take(1.5, (1000, 5000))  # lapsed: nothing left to use
    held = HeldLease(left=1, until=1.0, size=2, rate=(1000, 5000))
    assert not held.take(0.5, (10, 20))  # the key's rate changed: ask the shared count
    assert held.take(0.5, (1000, 5000))
    assert not held.take(0.5, (1000, 5000))
