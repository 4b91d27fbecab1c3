"""A browser profile in a context: its cookies and local storage, as Playwright's storage state."""

import json
from dataclasses import dataclass
from typing import Any

from playwright.async_api import BrowserContext

# Sets each saved item of the page's origin that the page has not set itself.
_FILL_LOCAL_STORAGE = """(origins) => {
  const items = origins[location.origin];
  if (!items) return;
  for (const [name, value] of Object.entries(items)) {
    if (localStorage.getItem(name) === null) localStorage.setItem(name, value);
  }
}"""


@dataclass(frozen=True)
class ProfileToSave:
    """A context's state, read when its task succeeded, to save as the tenant's profile `name`."""

    name: str
    state: bytes


async def load_profile(context: BrowserContext, state: bytes) -> None:
    """Puts a saved profile's cookies and local storage into `context`."""
    saved: dict[str, Any] = json.loads(state)
    cookies = saved.get("cookies", [])
    if cookies:
        await context.add_cookies(cookies)
    origins = {
        entry["origin"]: {item["name"]: item["value"] for item in entry.get("localStorage", [])}
        for entry in saved.get("origins", [])
    }
    if origins:
        # Local storage belongs to an origin's pages: filled in as each of them loads.
        await context.add_init_script(f"({_FILL_LOCAL_STORAGE})({json.dumps(origins)})")


async def read_profile(context: BrowserContext) -> bytes:
    """The context's cookies and local storage, as JSON to save as a profile."""
    return json.dumps(await context.storage_state()).encode()
