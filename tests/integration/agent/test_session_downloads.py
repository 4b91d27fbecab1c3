"""A session's browser refuses downloads to the agent's own Playwright connection too."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from farm_agent.browser.temp_dirs import TempDirs
from farm_agent.sessions.browser import LaunchOptions, SessionBrowser
from farm_agent.sessions.openings import OpeningsWatch
from tests.integration.agent.conftest import CHROMIUM, HAVE_CHROMIUM
from tests.pages import Site

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]


@pytest.fixture
async def session_browser(tmp_path: Path) -> AsyncIterator[SessionBrowser]:
    async with async_playwright() as playwright:
        folder = tmp_path / "session"
        browser = await SessionBrowser.launch(
            playwright,
            LaunchOptions(CHROMIUM, folder, proxy_arguments=(), temp_dirs=TempDirs(tmp_path / "t")),
        )
        try:
            yield browser
        finally:
            await browser.close()


async def test_a_download_is_refused_and_noted(session_browser: SessionBrowser, site: Site) -> None:
    page = await session_browser.page()
    await page.goto(site.url("/mcp/opener"))
    watch = OpeningsWatch(session_browser, page)
    await watch.start()
    async with page.expect_download() as started:
        await page.click("#dl")
    download = await started.value
    await watch.stop()
    assert await download.failure() == "canceled"
    noted = watch.refused_downloads()
    assert [(item.url, item.suggested_filename) for item in noted] == [
        (site.url("/download"), "file.bin")
    ]
