"""A session's own Chromium launched by the agent's code, and the bridge relaying to it.

Each module starts one Playwright driver (node takes a while to start) for its browsers.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Playwright, async_playwright

from farm_agent.sessions.browser import SessionBrowser
from tests.integration.agent.session_browser.session_relay import (
    Relay,
    launched_session_browser,
    relaying,
)


@pytest.fixture(scope="module")
async def playwright() -> AsyncIterator[Playwright]:
    """One Playwright driver for the module's session browsers (starting node takes a while)."""
    async with async_playwright() as driver:
        yield driver


@pytest.fixture
async def session_browser(
    playwright: Playwright, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[SessionBrowser]:
    """A session browser launched with the switches in the test's `param`, if any."""
    async with launched_session_browser(
        playwright, tmp_path, getattr(request, "param", ())
    ) as browser:
        yield browser


@pytest.fixture
async def relay(session_browser: SessionBrowser) -> AsyncIterator[Relay]:
    """The bridge between a test's CDP client and the session browser."""
    async with relaying(session_browser) as relay:
        yield relay
