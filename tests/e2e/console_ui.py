"""Driving the web console in the e2e tests: its pages' addresses, signing in, screenshots."""

import os
from pathlib import Path

from playwright.async_api import Page, expect

from farm_cli.launcher.farm import LocalFarm

SHOTS = os.environ.get("FARM_CONSOLE_SCREENSHOTS", "")
# Long enough for a task's whole run on a loaded machine; the page updates itself.
WITHIN_MS = 60_000


def console_url(farm: LocalFarm, path: str = "/") -> str:
    """A console page through the farm's Envoy."""
    return f"{farm.envoy_url}/console{path}"


async def sign_in(page: Page, farm: LocalFarm, key: str) -> None:
    """Opens the console, is sent to the sign-in page, and signs in with `key`."""
    await page.goto(console_url(farm))
    await expect(page).to_have_url(console_url(farm, "/signin"))
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()


async def shoot(page: Page, name: str) -> None:
    """Saves a screenshot of the page for docs/console.md, when asked to."""
    if SHOTS:
        await page.screenshot(path=Path(SHOTS) / f"{name}.png")
