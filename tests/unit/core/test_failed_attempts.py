"""Failed attempts per address: blocked past the limit, for a while, each address on its own."""

import pytest

from farm_core.failed_attempts import FailedAuthLimiter, retry_after_header
from tests.clock import MovedClock


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
