"""Check's token bucket per key (failed attempts: tests/unit/core/test_failed_attempts.py)."""

import pytest

from farm_auth.ratelimit import KeyRateLimiter, TokenBucket
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
