"""Check's limiters: the token bucket per key and the failed-attempt counter per address."""

import pytest

from farm_auth.ratelimit import (
    FailedAuthLimiter,
    KeyRateLimiter,
    TokenBucket,
    retry_after_header,
)
from tests.clock import MovedClock


def test_a_full_bucket_allows_exactly_its_burst_at_once() -> None:
    bucket = TokenBucket(per_second=2, burst=3, now=0.0)

    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)


def test_the_bucket_refills_at_its_rate_and_never_past_its_burst() -> None:
    bucket = TokenBucket(per_second=2, burst=3, now=0.0)
    for _ in range(3):
        bucket.take(0.0)

    assert bucket.take(0.25) == pytest.approx(0.25)  # half a token back: wait for the rest
    assert bucket.take(0.5) == 0.0
    assert [bucket.take(100.0) for _ in range(4)][-1] > 0  # a long pause gives only `burst`


def test_a_lowered_limit_applies_to_the_tokens_held() -> None:
    bucket = TokenBucket(per_second=10, burst=10, now=0.0)
    bucket.reshape(per_second=1, burst=1)

    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(1.0)


def test_each_key_has_its_own_bucket() -> None:
    limiter = KeyRateLimiter(max_keys=10, clock=MovedClock(1000.0))

    assert limiter.take("key_a", 1, 1) == 0.0
    assert limiter.take("key_a", 1, 1) > 0
    assert limiter.take("key_b", 1, 1) == 0.0


def test_a_changed_limit_takes_effect_on_the_next_request() -> None:
    clock = MovedClock(1000.0)
    limiter = KeyRateLimiter(max_keys=10, clock=clock)
    assert limiter.take("key_a", 1, 1) == 0.0
    assert limiter.take("key_a", 1, 1) > 0

    clock.now += 1.0
    assert limiter.take("key_a", 100, 100) == 0.0
    clock.now += 0.01  # one token at the new rate; at the old one it would take 1 s
    assert limiter.take("key_a", 100, 100) == 0.0


def test_the_key_limiter_keeps_at_most_max_keys_buckets() -> None:
    limiter = KeyRateLimiter(max_keys=2, clock=MovedClock(1000.0))
    for key in ("a", "b", "c"):
        limiter.take(key, 1, 1)

    assert limiter.take("a", 1, 1) == 0.0  # "a" was dropped: a fresh, full bucket


def test_an_address_is_blocked_after_more_failures_than_the_limit() -> None:
    clock = MovedClock(1000.0)
    limiter = FailedAuthLimiter(
        3, window_seconds=60, block_seconds=30, max_addresses=10, clock=clock
    )
    for _ in range(3):
        limiter.record_failure("10.0.0.1")
    assert limiter.blocked_for("10.0.0.1") == 0.0

    limiter.record_failure("10.0.0.1")

    assert limiter.blocked_for("10.0.0.1") == pytest.approx(30.0)
    assert limiter.blocked_for("10.0.0.2") == 0.0
    clock.now += 30
    assert limiter.blocked_for("10.0.0.1") == 0.0


def test_failures_older_than_the_window_do_not_count() -> None:
    clock = MovedClock(1000.0)
    limiter = FailedAuthLimiter(
        2, window_seconds=10, block_seconds=30, max_addresses=10, clock=clock
    )
    limiter.record_failure("a")
    limiter.record_failure("a")
    clock.now += 10
    limiter.record_failure("a")

    assert limiter.blocked_for("a") == 0.0


def test_a_zero_limit_never_blocks() -> None:
    limiter = FailedAuthLimiter(0, window_seconds=10, block_seconds=30, max_addresses=10)
    for _ in range(100):
        limiter.record_failure("a")

    assert limiter.blocked_for("a") == 0.0


@pytest.mark.parametrize(("seconds", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (59.5, "60")])
def test_retry_after_is_whole_seconds_rounded_up(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header
