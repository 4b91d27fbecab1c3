"""Driving the web console in the e2e tests: its pages' addresses, signing in, screenshots."""

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from playwright.async_api import Page, expect

from farm_cli.launcher.farm import LocalFarm
from farm_console.server import build_app
from farm_console.settings import ConsoleSettings
from farm_console.views import KEY_COOKIE

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


async def create_key(page: Page, farm: LocalFarm, name: str) -> str:
    """Fills in and submits the keys page's new-key form (tasks.read); the form's token.

    Returns once the page shows the new secret.
    """
    await page.goto(console_url(farm, "/keys"))
    form = page.locator("#create-key")
    token = await form.locator("input[name=formToken]").input_value()
    await form.get_by_label("Name").fill(name)
    await form.get_by_label("tasks.read").check()
    await form.get_by_role("button", name="Create").click()
    await expect(page.locator("#new-secret")).to_be_visible()
    return token


async def shoot(page: Page, name: str) -> None:
    """Saves a screenshot of the page for docs/console.md, when asked to."""
    if SHOTS:
        await page.screenshot(path=Path(SHOTS) / f"{name}.png")


@contextlib.asynccontextmanager
async def console_replica(farm: LocalFarm, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another console replica, in this process, calling `farm` as its own console does.

    Its client is signed in with `key` and sends its POSTs from the console's own
    origin. It shares nothing with the farm's console process but the farm.
    """
    tls = farm.tls_files
    settings = ConsoleSettings(
        farm_address=farm.envoy_url.split("://", 1)[1],
        farm_ca_file=tls.ca if tls is not None else None,
    )
    app = build_app(settings)
    origin = "http://console-replica.test"
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=origin,
            headers={"origin": origin, "cookie": f"{KEY_COOKIE}={key}"},
        ) as client:
            yield client
    finally:
        await app.state.farm.close()
