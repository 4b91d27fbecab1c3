"""Clearing a warm context after a task, so that the next task finds nothing of it.

In order: pop-ups close, the page goes to about:blank (a beforeunload dialog is
accepted, others dismissed) and forgets its history; a page that showed a dialog, or
that does not reach about:blank promptly, is closed and a new one opened in the same
context instead (Chromium's headless shell does not navigate away from a page whose
alert is still open, whatever answers it); cookies, permissions and the
HTTP cache are cleared for the whole context; every origin the task's requests
reached has its storage cleared (local and session storage, IndexedDB, cache
storage, service workers, file systems) by `Storage.clearDataForOrigin`; the tab's
window.name is emptied and the geolocation override cleared. Playwright has no call for most of
this: the page's CDP session does it.
"""

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, CDPSession, Dialog, Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from farm_agent.browser.page_guard import answer_dialog

log = logging.getLogger(__name__)

MAX_TRACKED_ORIGINS = 200
"""Origins a warm context's task may reach; past them the context is closed, not reset."""


class ResetFailed(Exception):
    """A warm context could not be cleared for certain: it must be closed instead."""


@dataclass(eq=False)
class KeptPage:
    """A warm context's page and its CDP session; whether it showed a dialog or crashed."""

    page: Page
    cdp: CDPSession
    dialog_opened: bool = False
    crashed: bool = False

    @classmethod
    async def open(cls, context: BrowserContext) -> "KeptPage":
        """A new page in `context`, with its CDP session, watched for dialogs."""
        page = await context.new_page()
        kept = cls(page, await context.new_cdp_session(page))
        page.on("dialog", kept._note_dialog)
        page.on("crash", kept._note_crash)
        return kept

    def _note_dialog(self, dialog: Dialog) -> None:
        # Answered or not, the dialog may still be open when the reset comes.
        self.dialog_opened = True

    def _note_crash(self, page: Page) -> None:
        self.crashed = True


def note_origin(origins: set[str], url: str) -> None:
    """Adds `url`'s origin (http, https, ws or wss) to `origins`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        return
    # Storage belongs to http(s) origins: a WebSocket's host is cleared as such.
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if len(origins) <= MAX_TRACKED_ORIGINS:
        origins.add(f"{scheme}://{parts.netloc.rpartition('@')[2]}")


async def reset_context(
    context: BrowserContext, kept: KeptPage, origins: set[str], leave_seconds: float
) -> KeptPage:
    """Clears what a task left in `context` and its `kept` page; the page to keep from now.

    Raises on any failure. The page goes to about:blank within `leave_seconds`, or is
    replaced by a new one; a page that crashed fails the reset.
    """
    if len(origins) > MAX_TRACKED_ORIGINS:
        raise ResetFailed(f"the task reached more than {MAX_TRACKED_ORIGINS} origins")
    if kept.crashed:
        # Something is wrong with this browser: the context is not worth keeping.
        raise ResetFailed("the page crashed")
    for other in context.pages:
        if other is not kept.page:
            await other.close()
    if kept.dialog_opened or not await _leave_page(context, kept.page, leave_seconds):
        kept = await _replace_page(context, kept)
    cdp = kept.cdp
    # window.name belongs to the tab, not the document: it would outlive the navigation.
    await cdp.send("Runtime.evaluate", {"expression": "window.name = ''"})
    await cdp.send("Page.resetNavigationHistory")
    await context.clear_cookies()
    await context.clear_permissions()
    await cdp.send("Network.clearBrowserCookies")
    await cdp.send("Network.clearBrowserCache")
    for origin in sorted(origins):
        await cdp.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "all"})
    await cdp.send("Emulation.clearGeolocationOverride")
    origins.clear()
    if len(context.pages) != 1:
        raise ResetFailed("a page opened while the context was reset")
    return kept


async def _leave_page(context: BrowserContext, page: Page, leave_seconds: float) -> bool:
    """Goes to about:blank (a beforeunload dialog is accepted); False if it did not in time."""
    context.on("dialog", answer_dialog)
    try:
        await page.goto("about:blank", wait_until="load", timeout=leave_seconds * 1000)
    except PlaywrightTimeoutError:
        log.info("a warm page did not leave for about:blank in %g s; it is replaced", leave_seconds)
        return False
    finally:
        context.remove_listener("dialog", answer_dialog)
    if page.url != "about:blank":
        raise ResetFailed(f"the page stayed at {page.url[:100]} instead of about:blank")
    return True


async def _replace_page(context: BrowserContext, kept: KeptPage) -> KeptPage:
    """Closes the kept page, whatever it shows (no beforeunload), and opens a new one."""
    await kept.page.close(run_before_unload=False)
    return await KeptPage.open(context)
