"""A session browser for tests, and a relay that bridges CDP clients to it as the agent does."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from playwright.async_api import Playwright

from farm_agent.browser.temp_dirs import TempDirs
from farm_agent.sessions.bridge import accept_client, bridge, close_client
from farm_agent.sessions.browser import LaunchOptions, SessionBrowser
from tests.integration.agent.conftest import CHROMIUM


@contextlib.asynccontextmanager
async def launched_session_browser(
    playwright: Playwright, folder: Path, extra_arguments: tuple[str, ...] = ()
) -> AsyncIterator[SessionBrowser]:
    """A session browser in `folder` (with `extra_arguments`), closed when the block ends."""
    browser = await SessionBrowser.launch(
        playwright,
        LaunchOptions(
            CHROMIUM,
            folder / "session",
            proxy_arguments=(),
            temp_dirs=TempDirs(folder / "temp-dirs"),
            extra_arguments=extra_arguments,
        ),
    )
    try:
        yield browser
    finally:
        await browser.close()


class Relay:
    """An aiohttp server bridging clients to one session browser, noting close requests."""

    def __init__(self, browser: SessionBrowser) -> None:
        self.browser = browser
        self.close_requests = 0
        self.activity = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        client, response = await accept_client(request)

        async def close_requested() -> None:
            self.close_requests += 1

        def touched() -> None:
            self.activity += 1

        await bridge(client, self.browser.cdp_endpoint, touched, close_requested)
        await close_client(client, "relay ended")
        return response


@contextlib.asynccontextmanager
async def relaying(browser: SessionBrowser) -> AsyncIterator[Relay]:
    """A relay to `browser` on a free port (its `url`), stopped when the block ends."""
    relay = Relay(browser)
    app = web.Application()
    app.router.add_get("/cdp", relay.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    relay.url = f"ws://127.0.0.1:{port}/cdp"
    try:
        yield relay
    finally:
        await runner.cleanup()
