"""The one exponential backoff: doubling waits, capped, and as tenacity's wait strategy."""

import pytest
from tenacity import AsyncRetrying, stop_after_attempt

from farm_core.backoff import DoublingWait, doubling_delay


def test_waits_double_from_the_first_up_to_the_cap() -> None:
    assert [doubling_delay(0.5, 5.0, failures) for failures in range(1, 7)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        5.0,
        5.0,
    ]


def test_a_count_below_one_waits_the_first_delay() -> None:
    assert doubling_delay(2.0, 60.0, 0) == 2.0
    assert doubling_delay(2.0, 60.0, -3) == 2.0


def test_a_huge_count_waits_the_cap_without_overflowing() -> None:
    assert doubling_delay(1.0, 30.0, 10**9) == 30.0


async def test_as_a_wait_strategy_it_waits_after_each_failed_attempt() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def fail() -> None:
        raise OSError("down")

    retrying = AsyncRetrying(
        stop=stop_after_attempt(5), wait=DoublingWait(1.0, 4.0), sleep=sleep, reraise=True
    )
    with pytest.raises(OSError, match="down"):
        await retrying(fail)
    assert waits == [1.0, 2.0, 4.0, 4.0]
