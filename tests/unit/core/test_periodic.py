"""The periodic loop: rounds every interval, failures survived or not, stop and cancel."""

import asyncio
import logging

import pytest

from farm_core.periodic import Periodic
from tests.helpers import assert_eventually

WITHIN_SECONDS = 5


class Rounds:
    """Work for the loop: counts its rounds; can hold a round, or fail the next few."""

    def __init__(self) -> None:
        self.started = 0
        self.finished = 0
        self.hold = False
        self.released = asyncio.Event()
        self.failures: list[Exception] = []

    async def work(self) -> None:
        self.started += 1
        if self.failures:
            raise self.failures.pop(0)
        if self.hold:
            await self.released.wait()
        self.finished += 1


async def test_rounds_repeat_every_interval_until_stopped() -> None:
    rounds = Rounds()
    loop = Periodic("test", rounds.work, 0.01)
    loop.start()
    await assert_eventually(lambda: rounds.finished >= 3, message="fewer than 3 rounds")
    async with asyncio.timeout(WITHIN_SECONDS):
        await loop.stop()
    assert loop.stopping


async def test_the_first_round_waits_one_interval_unless_told_to_run_at_once() -> None:
    waiting, at_once = Rounds(), Rounds()
    waits = Periodic("waits", waiting.work, 3600)
    runs = Periodic("runs", at_once.work, 3600, first_round_at_once=True)
    waits.start()
    runs.start()
    await assert_eventually(lambda: at_once.finished == 1, message="no round at once")
    await waits.stop()
    await runs.stop()
    assert (waiting.started, at_once.started) == (0, 1)


async def test_stop_lets_the_round_in_progress_finish() -> None:
    rounds = Rounds()
    rounds.hold = True
    loop = Periodic("test", rounds.work, 0.01)
    loop.start()
    await assert_eventually(lambda: rounds.started == 1, message="no round started")
    stopping = asyncio.create_task(loop.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()
    rounds.released.set()
    async with asyncio.timeout(WITHIN_SECONDS):
        await stopping
    assert (rounds.started, rounds.finished) == (1, 1)


async def test_cancel_ends_the_round_in_progress() -> None:
    rounds = Rounds()
    rounds.hold = True
    loop = Periodic("test", rounds.work, 0.01)
    loop.start()
    await assert_eventually(lambda: rounds.started == 1, message="no round started")
    async with asyncio.timeout(WITHIN_SECONDS):
        await loop.cancel()
    assert (rounds.started, rounds.finished) == (1, 0)


async def test_a_round_that_fails_as_foreseen_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds = Rounds()
    rounds.failures = [OSError("disk away"), OSError("disk still away")]
    loop = Periodic("purge", rounds.work, 0.01, survives=(OSError,))
    with caplog.at_level(logging.WARNING, logger="farm_core.periodic"):
        loop.start()
        await assert_eventually(lambda: rounds.finished >= 1, message="no round after failures")
        await loop.stop()
    assert "purge: a round failed (disk away); trying again in 0.0 s" in caplog.messages


async def test_an_unforeseen_error_ends_the_loop_and_stop_raises_it() -> None:
    rounds = Rounds()
    rounds.failures = [KeyError("bug")]
    loop = Periodic("test", rounds.work, 0.01, survives=(OSError,))
    loop.start()
    await assert_eventually(lambda: rounds.started == 1, message="no round started")
    with pytest.raises(KeyError, match="bug"):
        await loop.stop()
    assert rounds.finished == 0


async def test_by_default_any_exception_is_survived() -> None:
    rounds = Rounds()
    rounds.failures = [KeyError("bug")]
    loop = Periodic("test", rounds.work, 0.01)
    loop.start()
    await assert_eventually(lambda: rounds.finished >= 1, message="the loop died")
    await loop.stop()


async def test_a_failed_round_is_retried_sooner_when_asked_backing_off_to_the_interval() -> None:
    rounds = Rounds()
    rounds.failures = [RuntimeError("storage unreachable")]
    loop = Periodic("test", rounds.work, 3600, first_round_at_once=True, retry_seconds=0.01)
    loop.start()
    # Without the retry, the round after the failed one would come an hour later.
    await assert_eventually(lambda: rounds.finished == 1, message="the failure was not retried")
    await loop.stop()
    assert rounds.started == 2
    assert [loop.pause_after(failures) for failures in (0, 1, 2, 3)] == [3600, 0.01, 0.02, 0.04]
    assert loop.pause_after(40) == 3600


def test_without_a_retry_a_failed_round_waits_one_interval() -> None:
    assert Periodic("test", Rounds().work, 60).pause_after(3) == 60
