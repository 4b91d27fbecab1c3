"""What a session command's page started beyond itself: pages it opened, downloads it began.

A click on `target=_blank` or on a button that calls `window.open` opens a page the
command's own page never shows; Playwright announces it only once the new page has
committed its first navigation, which may be well after the click returned. So the
watch also listens for Chromium's `Page.windowOpen`, sent as the page asks for the
window: a command that asked for one waits for it, bounded, before it answers. A
download is refused by the browser (browser.py); the watch notes the file it
would have been.

The CDP session that hears `Page.windowOpen` is one per page, kept for the page's
life by the session's browser (`SessionBrowser.window_watch`): detaching a session
that enabled the Page domain makes Chromium dismiss a dialog the page shows, and a
command that ends on a dialog leaves it for the next.
"""

import asyncio
import contextlib
import logging
from typing import Any

from playwright.async_api import BrowserContext, CDPSession, Download, Page
from playwright.async_api import Error as PlaywrightError

from farm.tasks.v1 import tasks_pb2
from farm_agent.sessions.browser import SessionBrowser

log = logging.getLogger(__name__)

OPEN_WAIT_SECONDS = 5.0
"""At most how long a command waits for a page its page asked to open, then for its load."""


class OpeningsWatch:
    """Notes the pages and downloads `page` starts between start() and stop()."""

    def __init__(self, browser: SessionBrowser, page: Page) -> None:
        self._browser = browser
        self._context: BrowserContext = browser.context
        self._page = page
        self._asked = 0
        self._opened: list[Page] = []
        self._downloads: list[Download] = []
        self._arrived = asyncio.Event()
        self._cdp: CDPSession | None = None

    async def start(self) -> None:
        """Starts listening (a page that cannot be watched is simply not reported on)."""
        self._context.on("page", self._on_page)
        self._page.on("download", self._on_download)
        try:
            self._cdp = await self._browser.window_watch(self._page)
        except PlaywrightError as error:
            log.debug("cannot watch the page for new windows: %s", error)
            return
        self._cdp.on("Page.windowOpen", self._on_window_open)

    async def settle(self, wait_seconds: float = OPEN_WAIT_SECONDS) -> None:
        """Waits, up to `wait_seconds` in all, for the windows asked for to open and load."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                while len(self._opened) < self._asked:
                    self._arrived.clear()
                    await self._arrived.wait()
        for page in self._opened:
            left_ms = max(deadline - loop.time(), 0.001) * 1000
            with contextlib.suppress(PlaywrightError):
                await page.wait_for_load_state("domcontentloaded", timeout=left_ms)

    async def stop(self) -> None:
        """Stops listening."""
        self._context.remove_listener("page", self._on_page)
        for page in (self._page, *self._opened):
            page.remove_listener("download", self._on_download)
        if self._cdp is not None:
            self._cdp.remove_listener("Page.windowOpen", self._on_window_open)

    async def opened_pages(self) -> list[tasks_pb2.OpenedPage]:
        """The pages opened and still open, with their index and title, the current marked."""
        pages = self._browser.open_pages()
        current = self._browser.current_page()
        opened = []
        for page in self._opened:
            if page not in pages:
                continue
            title = ""
            with contextlib.suppress(PlaywrightError):
                title = await page.title()
            opened.append(
                tasks_pb2.OpenedPage(
                    index=pages.index(page), url=page.url, title=title, current=page is current
                )
            )
        return opened

    def refused_downloads(self) -> list[tasks_pb2.RefusedDownload]:
        """The downloads the pages started (each refused)."""
        return [
            tasks_pb2.RefusedDownload(
                url=download.url, suggested_filename=download.suggested_filename
            )
            for download in self._downloads
        ]

    def _on_window_open(self, _event: dict[str, Any]) -> None:
        self._asked += 1

    def _on_page(self, page: Page) -> None:
        self._opened.append(page)
        # A pop-up that is itself a download (window.open of a file) starts it there.
        page.on("download", self._on_download)
        self._arrived.set()

    def _on_download(self, download: Download) -> None:
        self._downloads.append(download)
