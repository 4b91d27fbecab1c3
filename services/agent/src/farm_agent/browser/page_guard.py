"""Keeps a task's page going whatever the page does: dialogs, pop-ups, downloads, crashes.

Dialogs are answered at once (alert, confirm and prompt dismissed, beforeunload
accepted so the page may leave), pop-ups are closed, downloads are refused (the
context does not accept them; a navigation that is a download fails with
DOWNLOAD_REFUSED), and a renderer crash ends the task with BROWSER_CRASHED at once:
after a crash Playwright's calls may answer with empty values instead of failing.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from playwright.async_api import BrowserContext, Dialog, Download, Page
from playwright.async_api import Error as PlaywrightError

from farm_agent import metrics
from farm_agent.browser.pooled import PooledBrowser
from farm_agent.errors import TaskFailure
from farm_core.cancel import Interrupted, unless_set
from farm_core.task_errors import ErrorCode

log = logging.getLogger(__name__)

Result = TypeVar("Result")

CONTEXT_OPTIONS: dict[str, Any] = {"accept_downloads": False}
"""Options every task's context gets: downloads are refused."""

CRASH_GRACE_SECONDS = 0.5
"""How long an aborted navigation waits for a crash event to tell whether the renderer died."""


class PageGuard:
    """Watches one task's browser context and its page."""

    def __init__(self, context: BrowserContext, browser: PooledBrowser | None = None) -> None:
        """`browser` is the pool's browser the context is on: its end ends the task too."""
        self._context = context
        self._crashed = asyncio.Event()
        self._browser = browser
        self._page: Page | None = None
        self._chores: set[asyncio.Task[None]] = set()
        context.on("dialog", self._on_dialog)
        context.on("page", self._on_page)

    @property
    def crashed(self) -> bool:
        """Whether the task's page crashed."""
        return self._crashed.is_set()

    def watch(self, page: Page) -> None:
        """Takes `page` as the task's own page: its crash ends the task."""
        self._page = page
        page.on("crash", self._on_crash)
        page.on("download", self._on_download)

    async def run(self, work: Awaitable[Result]) -> Result:
        """Runs `work`; a crash of the page, or its browser's end, ends it with BROWSER_CRASHED.

        The browser's end is its being given up or disconnecting (`until_gone`): a
        stopped browser (SIGSTOP, a frozen host) answers nothing, and a page still
        opening when its browser goes away is never answered, so the task's calls would
        wait out its whole timeout.
        """
        if self._browser is not None:
            work = self._browser.until_gone(work)
        try:
            result = await unless_set(work, self._crashed, "a task's work on its crashed page")
        except Interrupted:
            pass
        except TaskFailure as failure:
            if not await self._crashed_meanwhile(failure):
                raise
        except Exception:
            # After a crash, the work's own error only tells of the crash.
            if not self.crashed:
                raise
        else:
            if not self.crashed:
                return result
        raise TaskFailure(
            ErrorCode.BROWSER_CRASHED,
            "the page crashed: its renderer died (out of memory, killed, or a browser fault)",
        )

    def stop(self) -> None:
        """Stops watching: the context is about to close, or to be reset for another task."""
        self._context.remove_listener("dialog", self._on_dialog)
        self._context.remove_listener("page", self._on_page)
        if self._page is not None:
            self._page.remove_listener("crash", self._on_crash)
            self._page.remove_listener("download", self._on_download)
        for chore in self._chores:
            chore.cancel()

    async def _crashed_meanwhile(self, failure: TaskFailure) -> bool:
        """Whether an aborted navigation was the renderer dying (its crash event comes after)."""
        if failure.code is not ErrorCode.NAVIGATION_FAILED or "ERR_ABORTED" not in failure.message:
            return self.crashed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CRASH_GRACE_SECONDS):
                await self._crashed.wait()
        return self.crashed

    def _on_crash(self, page: Page) -> None:
        log.warning("the page of a task crashed (%s)", page.url)
        metrics.page_events_total.labels(kind="crash").inc()
        self._crashed.set()

    def _on_dialog(self, dialog: Dialog) -> None:
        metrics.page_events_total.labels(kind="dialog").inc()
        log.debug("answering a %s dialog: %.80s", dialog.type, dialog.message)
        self._chore(answer_dialog(dialog))

    def _on_page(self, page: Page) -> None:
        if page is self._page or self._page is None:
            return
        metrics.page_events_total.labels(kind="popup").inc()
        log.debug("closing a pop-up: %s", page.url)
        self._chore(_close_popup(page))

    def _on_download(self, download: Download) -> None:
        metrics.page_events_total.labels(kind="download").inc()
        log.info("refused a download: %s", download.url)

    def _chore(self, work: Coroutine[Any, Any, None]) -> None:
        chore = asyncio.ensure_future(work)
        self._chores.add(chore)
        chore.add_done_callback(self._chores.discard)


async def answer_dialog(dialog: Dialog) -> None:
    """Accepts a beforeunload dialog (the page may leave), dismisses any other."""
    try:
        if dialog.type == "beforeunload":
            await dialog.accept()
        else:
            await dialog.dismiss()
    except PlaywrightError as error:
        # The page went away with its dialog: nothing left to answer.
        log.debug("a dialog could not be answered: %s", error.message)


async def _close_popup(page: Page) -> None:
    try:
        await page.close()
    except PlaywrightError as error:
        log.debug("a pop-up could not be closed: %s", error.message)
