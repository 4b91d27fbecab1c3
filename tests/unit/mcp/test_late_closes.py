"""A session whose opening outlived its browser's close is closed by the server that owns it.

The server's end waits for such a late close (bounded), rather than leaving it to a
task nobody owns; past the bound it is cancelled, with the opening.
"""

import asyncio
from typing import Any

import pytest

from farm.sessions.v1 import sessions_pb2
from farm_mcp_tools.browser import BrowserSettings, FarmBrowser, LateCloses, StillOpening
from tests.unit.mcp.fake_farm import FakeFarm

CREDENTIALS = (("authorization", "Bearer bf_test"),)


class SlowFarm(FakeFarm):
    """A farm that opens a session only once the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.may_open = asyncio.Event()
        self.opening_cancelled = False

    async def open_session(self, spec: Any, credentials: Any, time_limit: float) -> Any:
        try:
            await self.may_open.wait()
        except asyncio.CancelledError:
            self.opening_cancelled = True
            raise
        return await super().open_session(spec, credentials, time_limit)


async def closed_while_opening(browser: FarmBrowser) -> None:
    """A tool call that gave up on the opening, then the browser's close."""
    with pytest.raises(StillOpening):
        await browser.run(sessions_pb2.SessionCommand(), CREDENTIALS, time_limit=0.6)
    assert await browser.close(CREDENTIALS, time_limit=5) is None


async def test_the_servers_end_waits_for_a_session_opened_after_its_close() -> None:
    farm = SlowFarm()
    late_closes = LateCloses(wait_seconds=30)
    browser = FarmBrowser(farm, BrowserSettings(), late_closes)  # type: ignore[arg-type]

    async with late_closes.running():
        await closed_while_opening(browser)
        farm.may_open.set()

    assert farm.closed == ["ses_1"]


async def test_a_late_close_past_the_servers_wait_is_cancelled_with_its_opening() -> None:
    farm = SlowFarm()
    late_closes = LateCloses(wait_seconds=0.1)
    browser = FarmBrowser(farm, BrowserSettings(), late_closes)  # type: ignore[arg-type]

    async with late_closes.running():
        await closed_while_opening(browser)

    assert farm.opening_cancelled
    assert farm.closed == []
