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


class NeverAnswered:
    """Work that never ends on its own; it notes that it started and that it was cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def __call__(self) -> int:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return 0


async def test_a_signal_set_first_cancels_the_work_and_interrupts() -> None:
    signal = asyncio.Event()
    work = NeverAnswered()

    racing = asyncio.ensure_future(unless_set(work(), signal, "never answered"))
    await work.started.wait()
    signal.set()
    with pytest.raises(Interrupted):
        await racing
    assert work.cancelled.is_set()


async def test_cancelling_the_caller_cancels_the_work() -> None:
    work = NeverAnswered()

    racing = asyncio.ensure_future(unless_set(work(), asyncio.Event(), "work"))
    await work.started.wait()
    racing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await racing
    assert work.cancelled.is_set()
