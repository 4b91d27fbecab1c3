"""unless_set: work raced against a signal, the loser cancelled."""

import asyncio

import pytest

from farm_core.cancel import Interrupted, unless_set


async def test_work_that_ends_first_gives_its_result_or_its_error() -> None:
    async def answer() -> int:
        return 42

    async def fail() -> int:
        raise ValueError("refused")

    assert await unless_set(answer(), asyncio.Event(), "answer") == 42
    with pytest.raises(ValueError, match="refused"):
        await unless_set(fail(), asyncio.Event(), "fail")


async def test_a_signal_set_first_cancels_the_work_and_interrupts() -> None:
    signal = asyncio.Event()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def never_answered() -> int:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0

    racing = asyncio.ensure_future(unless_set(never_answered(), signal, "never answered"))
    await started.wait()
    signal.set()
    with pytest.raises(Interrupted):
        await racing
    assert cancelled.is_set()


async def test_cancelling_the_caller_cancels_the_work() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def never_answered() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    racing = asyncio.ensure_future(unless_set(never_answered(), asyncio.Event(), "work"))
    await started.wait()
    racing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await racing
    assert cancelled.is_set()
