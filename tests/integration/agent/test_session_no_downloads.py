"""Each of the agent's layers that refuse an attached client's downloads, tested on its own.

A session's profile has its download folder where none can be made (no_downloads.py):
a download that falls to Chromium's own default is cancelled whatever the agent's
CDP layers did, so every download test would pass with any one of them gone. Here
that backstop is left out of the profile, so Chromium's default saves to HOME/Downloads
and each test stands on the one layer it names: the filter's rewrite of a client's
download behavior (cdp_filter.py), the deny in a context the client makes
(cdp_targets.py), the deny put back once a client leaves (browser.refuse_downloads).
A download's end is heard (Browser.downloadProgress), not looked for on disk a while.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from farm_agent.sessions import browser as browser_module
from farm_agent.sessions.bridge import CdpClient
from farm_agent.sessions.browser import SessionBrowser
from farm_agent.sessions.endpoints import SessionEndpoints
from farm_agent.sessions.manager import SessionManager
from farm_agent.sessions.session import OpenSession
from farm_core.identity import IDENTITY_HEADER, Identity
from farm_core.scopes import Scope
from tests.helpers import TEST_SIGNER
from tests.integration.agent.conftest import HAVE_CHROMIUM, open_session
from tests.pages import Site
from tests.raw_cdp import ANSWER_SECONDS, RawCdp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]


@pytest.fixture
def without_the_profiles_backstop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Session browsers launched with Chromium's default download folder (HOME/Downloads)."""
    monkeypatch.setattr(browser_module, "refuse_default_downloads", lambda profile: None)


@pytest.fixture
async def session(without_the_profiles_backstop: None, manager: SessionManager) -> OpenSession:
    """An open session whose browser would save a download nothing refuses."""
    return await open_session(manager)


class DownloadEnds:
    """How each download in the browser ended, heard on a CDP session of the test's own."""

    def __init__(self) -> None:
        self.states: asyncio.Queue[str] = asyncio.Queue()

    def heard(self, event: dict[str, Any]) -> None:
        """Notes a Browser.downloadProgress event that ends its download."""
        if event["state"] != "inProgress":
            self.states.put_nowait(event["state"])

    async def next(self) -> str:
        """The next download's end: `canceled` when refused, `completed` when saved."""
        async with asyncio.timeout(ANSWER_SECONDS):
            return await self.states.get()


async def download_ends(browser: SessionBrowser) -> DownloadEnds:
    """Hears every context's downloads end, changing no context the test studies.

    A connection hears download events once it set a behavior with `eventsEnabled`:
    it sets one in a context of its own, which nothing else uses.
    """
    ends = DownloadEnds()
    cdp = await browser.browser.new_browser_cdp_session()
    cdp.on("Browser.downloadProgress", ends.heard)
    own = (await cdp.send("Target.createBrowserContext"))["browserContextId"]
    deny = {"behavior": "deny", "browserContextId": own, "eventsEnabled": True}
    await cdp.send("Browser.setDownloadBehavior", deny)
    return ends


def begun(*folders: Path) -> list[Path]:
    """Any downloads folder under `folders`, and the downloaded file (done or partial).

    Chromium makes HOME/Downloads as it settles where a download it keeps goes (before
    it has the file's bytes); one it denies makes none.
    """
    made = [path for folder in folders for path in folder.rglob("Downloads")]
    return made + [path for folder in folders for path in folder.rglob("file.bin*")]


class Client(RawCdp):
    """A raw CDP client attached through the session's endpoint (no Playwright in between)."""

    async def attach(self, target: str) -> str:
        """Attaches to `target` (flat); its CDP session."""
        attached = await self.call("Target.attachToTarget", targetId=target, flatten=True)
        return str(attached["sessionId"])

    async def open_opener(self, context: str, site: Site) -> str:
        """Opens the page with a download link in a new page of `context`; its CDP session."""
        return await self.open_page(context, site.url("/mcp/opener"))

    async def click_download(self, session: str) -> None:
        """Clicks the download link of the page of `session`."""
        await self.call(
            "Runtime.evaluate", session, expression="document.getElementById('dl').click()"
        )


@contextlib.asynccontextmanager
async def attached(endpoints: SessionEndpoints, session: OpenSession) -> AsyncIterator[Client]:
    """A client attached to `session`'s browser; once it leaves, the agent is done with it."""
    identity = Identity("acme", "key_acme", frozenset({Scope.SESSIONS}))
    headers = {IDENTITY_HEADER: TEST_SIGNER.encode(identity)}
    url = f"ws://127.0.0.1:{endpoints.port}/v1/sessions/{session.session_id}/cdp"
    before = {client for client in session.clients if isinstance(client, CdpClient)}
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as socket:
        client = Client(socket)
        await client.call("Target.getTargets")
        [relay] = [c for c in session.clients if isinstance(c, CdpClient) and c not in before]
        yield client
    async with asyncio.timeout(ANSWER_SECONDS):
        await relay.settled.wait()


async def agents_download(session: OpenSession, site: Site) -> None:
    """The agent's own page (the default context's) clicks the download link."""
    page = await session.browser.page()
    await page.goto(site.url("/mcp/opener"))
    await page.click("#dl")


async def test_a_context_the_client_makes_refuses_downloads_though_the_client_set_none(
    session: OpenSession, endpoints: SessionEndpoints, site: Site
) -> None:
    ends = await download_ends(session.browser)
    async with attached(endpoints, session) as client:
        context = (await client.call("Target.createBrowserContext"))["browserContextId"]
        page = await client.open_opener(context, site)
        await client.click_download(page)
        assert await ends.next() == "canceled"
    assert begun(session.browser.options.folder) == []


@pytest.mark.parametrize("scope", ["browser", "page"])
async def test_a_clients_download_behavior_comes_to_deny(
    session: OpenSession, endpoints: SessionEndpoints, site: Site, tmp_path: Path, scope: str
) -> None:
    ends = await download_ends(session.browser)
    wanted = {"behavior": "allow", "downloadPath": str(tmp_path / "client")}
    async with attached(endpoints, session) as client:
        context = (await client.call("Target.createBrowserContext"))["browserContextId"]
        page = await client.open_opener(context, site)
        if scope == "browser":
            await client.call("Browser.setDownloadBehavior", browserContextId=context, **wanted)
        else:
            await client.call("Page.setDownloadBehavior", page, **wanted)
        await client.click_download(page)
        assert await ends.next() == "canceled"
    assert begun(session.browser.options.folder, tmp_path) == []


async def test_downloads_are_refused_again_in_the_default_context_once_a_client_leaves(
    session: OpenSession, endpoints: SessionEndpoints, site: Site
) -> None:
    ends = await download_ends(session.browser)
    async with attached(endpoints, session) as client:
        # Turned to deny by the filter; Chromium puts its own default back as this
        # connection ends, in the default context the agent's pages are in.
        await client.call("Browser.setDownloadBehavior", behavior="deny")
    await agents_download(session, site)
    assert await ends.next() == "canceled"
    assert begun(session.browser.options.folder) == []


async def test_downloads_are_refused_again_in_a_context_a_client_left_behind(
    session: OpenSession, endpoints: SessionEndpoints, site: Site
) -> None:
    ends = await download_ends(session.browser)
    async with attached(endpoints, session) as client:
        context = (await client.call("Target.createBrowserContext"))["browserContextId"]
        await client.call("Browser.setDownloadBehavior", behavior="deny", browserContextId=context)
        await client.open_opener(context, site)
    async with attached(endpoints, session) as client:
        targets = (await client.call("Target.getTargets"))["targetInfos"]
        [left] = [target for target in targets if target.get("browserContextId") == context]
        page = await client.attach(left["targetId"])
        await client.click_download(page)
        assert await ends.next() == "canceled"
    assert begun(session.browser.options.folder) == []


async def test_downloads_stay_refused_after_a_page_session_that_set_a_behavior_ends(
    session: OpenSession, endpoints: SessionEndpoints, site: Site
) -> None:
    ends = await download_ends(session.browser)
    page = await session.browser.page()
    await page.goto(site.url("/mcp/opener"))
    async with attached(endpoints, session) as client:
        targets = (await client.call("Target.getTargets"))["targetInfos"]
        [target] = [target for target in targets if target["type"] == "page"]
        page_session = await client.attach(target["targetId"])
        await client.call("Page.setDownloadBehavior", page_session, behavior="deny")
        # Chromium would put its own default back in the default context as this
        # session ends, the client still attached (so the agent denies nothing again).
        await client.call("Target.detachFromTarget", sessionId=page_session)
        await page.click("#dl")
        assert await ends.next() == "canceled"
    assert begun(session.browser.options.folder) == []
