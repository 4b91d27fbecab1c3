"""What a session command's page starts (openings.py), on a real session browser.

Downloads are refused to the agent's own Playwright connection too; the CDP session
that hears a page ask for a window is the session browser's, one per page, and ends
with the page or the browser.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, Playwright, async_playwright

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
        browser = await launch(playwright, tmp_path / "session")
        try:
            yield browser
        finally:
            await browser.close()


async def launch(playwright: Playwright, folder: Path) -> SessionBrowser:
    options = LaunchOptions(
        CHROMIUM, folder, proxy_arguments=(), temp_dirs=TempDirs(folder.parent / "t")
    )
    return await SessionBrowser.launch(playwright, options)


async def watched(browser: SessionBrowser, page: Page) -> None:
    """Runs an OpeningsWatch on `page` as a session command does."""
    watch = OpeningsWatch(browser, page)
    await watch.start()
    await watch.stop()


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


async def test_a_pages_window_watch_lasts_while_the_page_is_open(
    session_browser: SessionBrowser,
) -> None:
    first = await session_browser.page()
    second = await session_browser.new_page()
    await watched(session_browser, first)
    cdp = await session_browser.window_watch(first)
    await watched(session_browser, second)
    await watched(session_browser, first)
    # One CDP session per page, the same for every command on it.
    assert await session_browser.window_watch(first) is cdp
    assert set(session_browser.watched_pages()) == {first, second}
    await second.close()
    assert session_browser.watched_pages() == [first]
    await first.close()
    assert session_browser.watched_pages() == []


async def test_window_watches_are_each_session_browsers_own_and_end_with_it(
    session_browser: SessionBrowser, tmp_path: Path
) -> None:
    mine = await session_browser.page()
    await watched(session_browser, mine)
    async with async_playwright() as playwright:
        other = await launch(playwright, tmp_path / "other")
        try:
            theirs = await other.page()
            await watched(other, theirs)
            assert other.watched_pages() == [theirs]
            assert session_browser.watched_pages() == [mine]
        finally:
            await other.close()
        assert other.watched_pages() == []
    assert session_browser.watched_pages() == [mine]
