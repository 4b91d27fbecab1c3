"""Clearing a warm context after a task, so that the next task finds nothing of it.

In order: pop-ups close, the page goes to about:blank (a beforeunload dialog is
accepted, others dismissed) and forgets its history; cookies, permissions and the
HTTP cache are cleared for the whole context; every origin the task's requests
reached has its storage cleared (local and session storage, IndexedDB, cache
storage, service workers, file systems) by `Storage.clearDataForOrigin`; the tab's
window.name is emptied and the geolocation override cleared. Playwright has no call for most of
this: the page's CDP session does it.
"""

import logging
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, CDPSession, Page

from farm_agent.browser.page_guard import answer_dialog

log = logging.getLogger(__name__)

MAX_TRACKED_ORIGINS = 200
"""Origins a warm context's task may reach; past them the context is closed, not reset."""


class ResetFailed(Exception):
    """A warm context could not be cleared for certain: it must be closed instead."""


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
    context: BrowserContext, page: Page, cdp: CDPSession, origins: set[str]
) -> None:
    """Clears what a task left in `context` and its kept `page`; raises on any failure."""
    if len(origins) > MAX_TRACKED_ORIGINS:
        raise ResetFailed(f"the task reached more than {MAX_TRACKED_ORIGINS} origins")
    for other in context.pages:
        if other is not page:
            await other.close()
    await _leave_page(context, page)
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


async def _leave_page(context: BrowserContext, page: Page) -> None:
    """Goes to about:blank; a beforeunload dialog is accepted so that the page may leave."""
    context.on("dialog", answer_dialog)
    try:
        await page.goto("about:blank", wait_until="load")
    finally:
        context.remove_listener("dialog", answer_dialog)
    if page.url != "about:blank":
        raise ResetFailed(f"the page stayed at {page.url[:100]} instead of about:blank")
