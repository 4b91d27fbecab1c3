"""The pure rules of the farm-wide limits: GCRA for rates, a windowed count for refusals."""

from farm_auth.shared_limits import (
    FailureCount,
    FailureRule,
    after_failure,
    entry_key,
    rate_decision,
)


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
