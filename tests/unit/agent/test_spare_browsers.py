"""Spare session browsers: ready while sessions are asked for, given back when not."""

import asyncio
import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from farm_agent.egress.session import EgressSession
from farm_agent.sessions.warm import SpareBrowsers, WarmBrowser
from tests.helpers import assert_eventually


class Starts:
    """Starts stand-in browsers and notes which were closed; a start may be held back."""

    def __init__(self) -> None:
        self.started: list[Path] = []
        self.closed: list[Path] = []
        self.go = asyncio.Event()
        self.go.set()

    async def __call__(self, folder: Path) -> WarmBrowser:
        self.started.append(folder)
        await self.go.wait()
        stack = contextlib.AsyncExitStack()
        stack.callback(self.closed.append, folder)
        browser: Any = SimpleNamespace(alive=True)
        return WarmBrowser(browser, EgressSession(label="spare"), stack, folder)


async def test_spares_close_after_the_keep_time_and_come_back_with_the_next_session(
    tmp_path: Path,
) -> None:
    starts = Starts()
    spares = SpareBrowsers(starts, tmp_path, count=2, keep_seconds=0.3)
    try:
        spares.fill()  # the agent's start
        # Counted by starts and closes: a loaded machine may not look while both are ready.
        await assert_eventually(lambda: len(starts.closed) == 2, within=5)
        assert spares.ready == 0
        assert sorted(starts.closed) == sorted(starts.started)

        assert await spares.take() is None  # a session asks: none ready, two start
        await assert_eventually(lambda: len(starts.started) == 4, within=5)
    finally:
        await spares.close()
    assert sorted(starts.closed) == sorted(starts.started)


async def test_each_session_keeps_the_spares_longer(tmp_path: Path) -> None:
    starts = Starts()
    spares = SpareBrowsers(starts, tmp_path, count=1, keep_seconds=0.5)
    try:
        spares.fill()
        await assert_eventually(lambda: spares.ready == 1, within=5)
        for _ in range(4):  # a session every 0.3 s: never 0.5 s without one
            await asyncio.sleep(0.3)
            assert await spares.take() is not None
            await assert_eventually(lambda: spares.ready == 1, within=5)
        assert starts.closed == []
    finally:
        await spares.close()


async def test_with_keep_0_the_spares_stay(tmp_path: Path) -> None:
    starts = Starts()
    spares = SpareBrowsers(starts, tmp_path, count=1, keep_seconds=0)
    try:
        spares.fill()
        await assert_eventually(lambda: spares.ready == 1, within=5)
        await asyncio.sleep(0.5)
        assert spares.ready == 1 and starts.closed == []
    finally:
        await spares.close()


async def test_a_session_that_comes_while_a_spare_starts_waits_for_that_spare(
    tmp_path: Path,
) -> None:
    starts = Starts()
    starts.go.clear()
    spares = SpareBrowsers(starts, tmp_path, count=1, keep_seconds=0)
    try:
        spares.fill()  # the agent's start: one spare starting, held back
        taking = asyncio.create_task(spares.take())
        await asyncio.sleep(0.1)
        assert not taking.done()
        starts.go.set()
        taken = await asyncio.wait_for(taking, 5)
        assert taken is not None and taken.folder == starts.started[0]
        await assert_eventually(lambda: spares.ready == 1, within=5)  # its replacement
        assert len(starts.started) == 2
    finally:
        await spares.close()
