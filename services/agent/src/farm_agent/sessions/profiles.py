"""A session's saved profile: its cookies and local storage, as Playwright's storage state."""

import json
import logging

from playwright.async_api import Error as PlaywrightError

from farm_agent.sessions.browser import SessionBrowser

log = logging.getLogger(__name__)

# Sets each saved item of the page's origin that the page has not set itself.
_FILL_LOCAL_STORAGE = """(origins) => {
  const items = origins[location.origin];
  if (!items) return;
  for (const [name, value] of Object.entries(items)) {
    if (localStorage.getItem(name) === null) localStorage.setItem(name, value);
  }
}"""


async def load_profile(browser: SessionBrowser, state: bytes) -> None:
    """Puts a saved profile's cookies and local storage into the session's default context."""
    saved = json.loads(state)
    cookies = saved.get("cookies", [])
    if cookies:
        await browser.context.add_cookies(cookies)
    origins = {
        entry["origin"]: {item["name"]: item["value"] for item in entry.get("localStorage", [])}
        for entry in saved.get("origins", [])
    }
    if origins:
        # Local storage belongs to an origin's pages: filled in as each of them loads.
        await browser.context.add_init_script(f"({_FILL_LOCAL_STORAGE})({json.dumps(origins)})")


async def save_profile(browser: SessionBrowser, session_id: str) -> bytes:
    """The session's cookies and local storage, to save as its profile; empty if unreadable."""
    try:
        state = await browser.context.storage_state()
    except PlaywrightError as error:
        log.warning("session %s: its profile was not saved: %s", session_id, error)
        return b""
    return json.dumps(state).encode()
