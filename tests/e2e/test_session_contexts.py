"""Browser contexts an attached client makes of its own (`Target.createBrowserContext`).

On the shared farm, over raw CDP (and Playwright's `new_context`): a client that
never sets a download behavior, or that leaves its context behind, still gets
downloads refused, and the context's pages still go through the egress guard.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Playwright

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.sessions_api import Sessions
from tests.helpers import assert_eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

SAVED_LOOK_SECONDS = 3.0
"""How long a refused download is looked for on the farm's disk (a begun one shows at once)."""
ANSWER_SECONDS = 15.0


class RawCdp:
    """One raw CDP socket to a session's browser: commands and their answers, events kept."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._last_id = 0
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Sends one command (on a page's `session`, if given) and returns its result."""
        self._last_id += 1
        command: dict[str, Any] = {"id": self._last_id, "method": method, "params": params}
        if session is not None:
            command["sessionId"] = session
        await self._socket.send_str(json.dumps(command))
        async with asyncio.timeout(ANSWER_SECONDS):
            while True:
                message = json.loads(await self._socket.receive_str())
                if message.get("id") == self._last_id:
                    assert "result" in message, message
                    return dict(message["result"])
                if "method" in message:
                    self.events.append(message)

    async def event(self, method: str, session: str | None = None) -> dict[str, Any]:
        """The first event `method` (of `session`) heard, waiting for it if need be."""
        async with asyncio.timeout(ANSWER_SECONDS):
            while True:
                for message in self.events:
                    if message["method"] == method and message.get("sessionId") == session:
                        self.events.remove(message)
                        return message
                message = json.loads(await self._socket.receive_str())
                if "method" in message:
                    self.events.append(message)

    async def open_page(self, context: str, url: str) -> str:
        """Opens `url` in a new page of `context`, waits for its load; its CDP session."""
        target = await self.call("Target.createTarget", url="about:blank", browserContextId=context)
        attached = await self.call(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        session = str(attached["sessionId"])
        await self.call("Page.enable", session)
        await self.call("Page.navigate", session, url=url)
        await self.event("Page.loadEventFired", session)
        return session


@contextlib.asynccontextmanager
async def raw_cdp(url: str, key: str) -> AsyncIterator[RawCdp]:
    """A raw CDP socket to the session's browser, through Envoy, with `key`."""
    headers = {"authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as socket:
        yield RawCdp(socket)


def downloads_begun(home: Path) -> list[Path]:
    """Any session browser's downloads folder under `home`, and what it holds.

    Chromium makes the folder as it settles where a download it keeps goes; one it
    refuses makes none.
    """
    return [path for folder in home.rglob("Downloads") for path in [folder, *folder.iterdir()]]


async def assert_nothing_saved(farm: LocalFarm) -> None:
    """No download is begun anywhere under the farm's home for a while."""
    deadline = asyncio.get_running_loop().time() + SAVED_LOOK_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        assert await asyncio.to_thread(downloads_begun, Path(farm.home)) == []
        await asyncio.sleep(0.2)


async def click_download(cdp: RawCdp, session: str, site: Site, hold: str) -> None:
    """Clicks the page's download link, a file the site holds half sent until gate `hold` opens.

    Returns once the site has begun serving it.
    """
    served = site.hits.get("/download", 0)
    link = f"/download?hold={hold}&times=100000"
    click = f"const a = document.getElementById('dl'); a.href = '{link}'; a.click()"
    await cdp.call("Runtime.evaluate", session, expression=click)
    await assert_eventually(lambda: site.hits.get("/download", 0) > served)


async def test_downloads_are_refused_in_a_context_a_client_makes_without_a_behavior(
    farm: LocalFarm, sessions: Sessions, site: Site
) -> None:
    with sessions.opened() as session:
        try:
            async with raw_cdp(session["cdpUrl"], farm.admin_key) as cdp:
                context = (await cdp.call("Target.createBrowserContext"))["browserContextId"]
                page = await cdp.open_page(context, site.url("/mcp/opener"))
                # No behavior set: Chromium's own default would begin the download (its
                # folder made, the file received) and decide only then what becomes of it.
                await click_download(cdp, page, site, hold="own-context")
                await assert_nothing_saved(farm)
        finally:
            site.release("own-context")


async def test_downloads_stay_refused_in_a_context_its_client_left_behind(
    farm: LocalFarm, sessions: Sessions, site: Site
) -> None:
    with sessions.opened() as session:
        try:
            async with raw_cdp(session["cdpUrl"], farm.admin_key) as cdp:
                context = (await cdp.call("Target.createBrowserContext"))["browserContextId"]
                # Deny, as the filter allows: Chromium resets it as this connection ends.
                await cdp.call(
                    "Browser.setDownloadBehavior", behavior="deny", browserContextId=context
                )
                await cdp.open_page(context, site.url("/mcp/opener"))
            async with raw_cdp(session["cdpUrl"], farm.admin_key) as cdp:
                targets = (await cdp.call("Target.getTargets"))["targetInfos"]
                (left,) = [t for t in targets if t.get("browserContextId") == context]
                attached = await cdp.call(
                    "Target.attachToTarget", targetId=left["targetId"], flatten=True
                )
                await click_download(cdp, attached["sessionId"], site, hold="left-context")
                await assert_nothing_saved(farm)
        finally:
            site.release("left-context")


async def test_a_playwright_context_of_the_clients_own_hears_its_download_refused(
    farm: LocalFarm, sessions: Sessions, site: Site, playwright: Playwright
) -> None:
    with sessions.opened() as session:
        browser = await playwright.chromium.connect_over_cdp(
            session["cdpUrl"], headers={"authorization": f"Bearer {farm.admin_key}"}
        )
        try:
            # Target.createBrowserContext, then Playwright's own download behavior.
            page = await (await browser.new_context()).new_page()
            await page.goto(site.url("/mcp/opener"))
            async with page.expect_download() as download:
                await page.click("#dl")
            assert await (await download.value).failure() == "canceled"
            await assert_nothing_saved(farm)
        finally:
            await browser.close()


async def test_a_clients_own_context_goes_through_the_egress_guard(
    farm: LocalFarm, sessions: Sessions, site: Site
) -> None:
    with sessions.opened() as session:
        async with raw_cdp(session["cdpUrl"], farm.admin_key) as cdp:
            context = (await cdp.call("Target.createBrowserContext"))["browserContextId"]
            page = await cdp.open_page(context, "http://10.0.0.1/")
            body = await cdp.call("Runtime.evaluate", page, expression="document.body.innerText")
            assert "private" in body["result"]["value"], body
