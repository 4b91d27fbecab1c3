"""A session's own Chromium, reached by a CDP client through the bridge and its filter."""

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from aiohttp import web
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Playwright, async_playwright

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.browser.temp_dirs import TempDirs
from farm_agent.errors import TaskFailure
from farm_agent.sessions.bridge import accept_client, bridge, close_client
from farm_agent.sessions.browser import LaunchOptions, SessionBrowser
from farm_agent.sessions.tabs import change_tabs
from farm_agent.sessions.warm import DEFAULT_SCREEN, start_browser
from farm_core.task_errors import ErrorCode
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import CHROMIUM, HAVE_CHROMIUM, agent_settings
from tests.integration.agent.pool_browsers import renderer_pids, renderers_frozen_as_they_start
from tests.pages import Site

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]


@pytest.fixture
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as driver:
        yield driver


@pytest.fixture
async def session_browser(
    playwright: Playwright, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[SessionBrowser]:
    browser = await SessionBrowser.launch(
        playwright,
        LaunchOptions(
            CHROMIUM,
            tmp_path / "session",
            proxy_arguments=(),
            temp_dirs=TempDirs(tmp_path / "temp-dirs"),
            extra_arguments=getattr(request, "param", ()),
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


@pytest.fixture
async def relay(session_browser: SessionBrowser) -> AsyncIterator[Relay]:
    relay = Relay(session_browser)
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


# The second with the browser's own WebUI targets (see WITH_WEBUI), which the filter hides.
@pytest.mark.parametrize("session_browser", [(), ("--disable-features=",)], indirect=True)
async def test_a_client_drives_the_sessions_page_through_the_bridge(
    relay: Relay, playwright: Playwright
) -> None:
    page = await relay.browser.page()
    await page.goto("data:text/html,<title>the session's page</title>")
    client = await playwright.chromium.connect_over_cdp(relay.url)
    try:
        pages = [p for context in client.contexts for p in context.pages]
        assert [await p.title() for p in pages] == ["the session's page"]
        await pages[0].evaluate("document.title = 'changed by the client'")
        assert await page.title() == "changed by the client"
        assert relay.activity > 0
    finally:
        await client.close()


async def test_the_filter_refuses_file_urls_and_remote_locations(relay: Relay) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(relay.url) as socket:
        await socket.send_str(
            json.dumps(
                {"id": 1, "method": "Target.createTarget", "params": {"url": "file:///etc/passwd"}}
            )
        )
        reply = json.loads((await socket.receive()).data)
        assert reply["id"] == 1 and "scheme" in reply["error"]["message"]
        await socket.send_str(
            json.dumps(
                {
                    "id": 2,
                    "method": "Target.setRemoteLocations",
                    "params": {"locations": [{"host": "10.0.0.1", "port": 9222}]},
                }
            )
        )
        reply = json.loads((await socket.receive()).data)
        assert reply["id"] == 2 and "not allowed" in reply["error"]["message"]
        await socket.send_str(json.dumps({"id": 3, "method": "Target.getTargets"}))
        reply = json.loads((await socket.receive()).data)
        assert [t["url"] for t in reply["result"]["targetInfos"] if t["type"] == "page"] == [
            "about:blank"
        ]


async def test_browser_close_from_the_client_asks_for_the_session_to_close(
    relay: Relay,
) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(relay.url) as socket:
        await socket.send_str(json.dumps({"id": 9, "method": "Browser.close"}))
        reply = json.loads((await socket.receive()).data)
        assert reply == {"id": 9, "result": {}}
        closing = await socket.receive()
        assert closing.type == aiohttp.WSMsgType.CLOSE
        assert closing.extra == "relay ended"
    await assert_eventually(lambda: relay.close_requests == 1, within=5)
    # The filter answered for the browser: it still runs.
    assert relay.browser.alive


async def test_a_download_in_chromiums_own_default_is_cancelled_and_saves_nothing(
    session_browser: SessionBrowser, tmp_path: Path, site: Site
) -> None:
    # Chromium's own default (what it puts back when an attached client leaves, until
    # the agent denies downloads again) would save to HOME/Downloads.
    cdp = await session_browser.browser.new_browser_cdp_session()
    states: list[str] = []
    cdp.on("Browser.downloadProgress", lambda event: states.append(event["state"]))
    await cdp.send("Browser.setDownloadBehavior", {"behavior": "default", "eventsEnabled": True})
    page = await session_browser.browser.contexts[0].new_page()

    with contextlib.suppress(PlaywrightError):  # "Download is starting"
        await page.goto(f"{site.base_url}/download")

    await assert_eventually(lambda: states and states[-1] != "inProgress", within=10)
    assert states[-1] == "canceled"
    saved = [path for path in (tmp_path / "session").rglob("file.bin*")]
    assert saved == []


async def test_closing_the_session_browser_kills_its_process_and_removes_its_folder(
    playwright: Playwright, tmp_path: Path
) -> None:
    folder = tmp_path / "gone"
    browser = await SessionBrowser.launch(
        playwright,
        LaunchOptions(
            CHROMIUM, folder, proxy_arguments=(), temp_dirs=TempDirs(folder.parent / "t")
        ),
    )
    assert (folder / "profile").is_dir()
    await browser.close()
    assert browser.process.returncode is not None
    assert not folder.exists()


async def test_a_launch_cancelled_midway_leaves_no_chromium_and_no_folder(
    playwright: Playwright, tmp_path: Path
) -> None:
    folder = tmp_path / "cancelled"
    launching = asyncio.create_task(
        SessionBrowser.launch(
            playwright,
            LaunchOptions(
                CHROMIUM, folder, proxy_arguments=(), temp_dirs=TempDirs(folder.parent / "t")
            ),
        )
    )
    # Cancelled once Chromium runs, before its DevTools port is up (as a spare being started
    # when its agent stops).
    await assert_eventually(lambda: bool(chromium_children()), within=10)
    launching.cancel()
    with pytest.raises(asyncio.CancelledError):
        await launching
    assert not chromium_children()
    assert not folder.exists()


def chromium_children() -> list[psutil.Process]:
    """This process's running Chromium children (not zombies)."""
    return [
        child
        for child in psutil.Process().children()
        if "chromium" in child.name() and child.status() != psutil.STATUS_ZOMBIE
    ]


async def test_no_page_reaches_a_session_browsers_devtools_port_even_with_loopback_allowed(
    shared_pool: BrowserPool, tmp_path: Path
) -> None:
    settings = agent_settings(tmp_path, allow="127.0.0.0/8")
    first = await start_browser(shared_pool, settings, DEFAULT_SCREEN, tmp_path / "first")
    second = await start_browser(shared_pool, settings, DEFAULT_SCREEN, tmp_path / "second")
    try:
        target = f"http://127.0.0.1:{first.browser.debug_port}/json/version"
        page = await second.browser.page()
        response = await page.goto(target)
        assert response is not None and response.status == 403
        assert "farm's own services" in (await page.text_content("body") or "")
        assert second.egress.blocked[0].target == target
        # A task's page in the pool is refused as well.
        spec = tasks_pb2.TaskSpec(url=target, content=tasks_pb2.ContentOptions())
        with pytest.raises(TaskFailure) as caught:
            await BrowserSpecRunner(shared_pool, settings).run(spec)
        assert caught.value.code is ErrorCode.BLOCKED_URL
    finally:
        await second.resources.aclose()
        port = first.browser.debug_port
        assert port in shared_pool.egress.guarded_ports
        await first.resources.aclose()
    # Once the browser has ended its port is no longer guarded (another may take it).
    assert port not in shared_pool.egress.guarded_ports


@pytest.mark.parametrize("opening", ["tabs new", "every page closed"])
async def test_a_page_opening_when_the_session_browser_dies_fails_at_once_as_crashed(
    session_browser: SessionBrowser, opening: str
) -> None:
    """Playwright never answers a new page still opening when its browser disconnects.

    The page's renderer is stopped as it starts, so it cannot open; the browser is then
    killed (as by a crash or the OOM killer). Without the watch on the browser the
    command waited out its whole time.
    """
    pid = session_browser.process.pid
    before = renderer_pids(pid)
    page_opened: Awaitable[object]
    if opening == "tabs new":
        page_opened = change_tabs(
            session_browser, sessions_pb2.TabsControl(action=sessions_pb2.TABS_ACTION_NEW)
        )
    else:
        for page in session_browser.open_pages():
            await page.close()
        page_opened = session_browser.page()
    async with renderers_frozen_as_they_start(pid) as frozen:
        opening_page = asyncio.ensure_future(page_opened)
        await assert_eventually(lambda: frozen - before, within=10)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(TaskFailure) as caught:
            # Only a bound: the failure comes as the browser's connection ends.
            async with asyncio.timeout(60):
                await opening_page

    assert caught.value.code is ErrorCode.BROWSER_CRASHED, caught.value
    assert "session's browser went away" in caught.value.message


async def test_a_command_reaching_the_page_of_a_closed_session_browser_fails_as_crashed(
    session_browser: SessionBrowser,
) -> None:
    """A command racing its session's close (its lifetime, a user's close) finds the browser
    closed under it: BROWSER_CRASHED, not an IndexError the scheduler answered as INTERNAL."""
    await session_browser.close()
    with pytest.raises(TaskFailure) as caught:
        await session_browser.page()
    assert caught.value.code is ErrorCode.BROWSER_CRASHED, caught.value
    assert caught.value.message == "the session's browser is closed"


class Cdp:
    """A raw CDP client that keeps every event it reads."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.events: list[dict[str, Any]] = []
        self._next = 0

    async def send(self, method: str, params: dict[str, Any] | None = None, **extra: Any) -> Any:
        self._next += 1
        await self.socket.send_str(
            json.dumps({"id": self._next, "method": method, "params": params or {}, **extra})
        )
        while True:
            message = json.loads((await self.socket.receive()).data)
            if message.get("id") == self._next:
                return message
            self.events.append(message)

    async def event(self, method: str, text: str, within: float = 10) -> dict[str, Any]:
        """The first event `method` (read or kept already) whose JSON holds `text`."""

        def matches(message: dict[str, Any]) -> bool:
            return message.get("method") == method and text in json.dumps(message)

        async with asyncio.timeout(within):
            while not any(matches(message) for message in self.events):
                self.events.append(json.loads((await self.socket.receive()).data))
        return next(message for message in self.events if matches(message))


# Chromium keeps the last --disable-features: its omnibox popups (a privileged
# chrome:// page each, `browser_ui` targets in the context of the session's pages)
# are made as without the agent's launch flag, so the filter is tested on its own.
WITH_WEBUI = pytest.mark.parametrize("session_browser", [("--disable-features=",)], indirect=True)


async def browser_ui_targets(relay: Relay) -> list[dict[str, Any]]:
    """The browser's own WebUI targets, as the agent (not the client) sees them."""
    async with aiohttp.ClientSession() as http, http.ws_connect(relay.browser.cdp_endpoint) as ws:
        reply = await Cdp(ws).send("Target.getTargets")
    return [t for t in reply["result"]["targetInfos"] if t["type"] == "browser_ui"]


async def test_a_session_browser_makes_no_browser_ui_target(relay: Relay) -> None:
    assert await browser_ui_targets(relay) == []


@WITH_WEBUI
async def test_the_client_sees_the_sessions_pages_and_no_browser_ui_target(relay: Relay) -> None:
    assert await browser_ui_targets(relay), "this Chromium has no WebUI target to hide"
    async with aiohttp.ClientSession() as http, http.ws_connect(relay.url) as socket:
        cdp = Cdp(socket)
        reply = await cdp.send("Target.getTargets")
        assert [t["type"] for t in reply["result"]["targetInfos"]] == ["page"]
        await cdp.send("Target.setDiscoverTargets", {"discover": True})
        await cdp.send(
            "Target.setAutoAttach",
            {"autoAttach": True, "waitForDebuggerOnStart": False, "flatten": True},
        )
        await cdp.send("Target.createTarget", {"url": "about:blank"})
        infos = [e["params"]["targetInfo"] for e in cdp.events if "targetInfo" in e["params"]]
        assert infos and {info["type"] for info in infos} == {"page"}
        assert not any(info["url"].startswith("chrome:") for info in infos)


@WITH_WEBUI
async def test_attaching_to_a_browser_ui_target_is_refused(relay: Relay) -> None:
    target = (await browser_ui_targets(relay))[0]["targetId"]
    async with aiohttp.ClientSession() as http, http.ws_connect(relay.url) as socket:
        cdp = Cdp(socket)
        reply = await cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        assert "error" in reply, reply
        assert "'browser_ui'" in reply["error"]["message"]
        assert not any(e["method"] == "Target.attachedToTarget" for e in cdp.events)
        # Known now: refused before it reaches the browser, as is its info.
        for method in ("Target.attachToTarget", "Target.getTargetInfo", "Target.activateTarget"):
            reply = await cdp.send(method, {"targetId": target, "flatten": True})
            assert "browser_ui" in reply["error"]["message"], reply
        reply = await cdp.send("Target.attachToBrowserTarget")
        assert "'browser'" in reply["error"]["message"], reply


async def test_a_clients_page_cannot_become_a_webui_page(relay: Relay) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(relay.url) as socket:
        cdp = Cdp(socket)
        (page,) = (await cdp.send("Target.getTargets"))["result"]["targetInfos"]
        attach = {"targetId": page["targetId"], "flatten": True}
        session = (await cdp.send("Target.attachToTarget", attach))["result"]["sessionId"]
        await cdp.send("Target.setDiscoverTargets", {"discover": True})
        await cdp.send("Log.enable", sessionId=session)
        # Asked over CDP: refused by the agent's filter, whatever the spelling.
        for url in ("chrome://version", " CHROME://settings", "\tchrome:version"):
            reply = await cdp.send("Page.navigate", {"url": url}, sessionId=session)
            assert "the scheme 'chrome' is refused" in reply["error"]["message"], reply
        # An about: alias of a WebUI page is let through, and Chromium blocks it.
        await cdp.send("Page.navigate", {"url": "about:version"}, sessionId=session)
        await cdp.event("Target.targetInfoChanged", '"url": "about:blank#blocked"')
        # The page's own script may not leave for a chrome: URL (Chromium refuses it).
        for script in ("window.location = 'chrome://settings'", "window.open('chrome://version')"):
            await cdp.send("Runtime.evaluate", {"expression": script}, sessionId=session)
            host = script.split("//")[1].rstrip("')")
            await cdp.event(
                "Log.entryAdded", f"Not allowed to load local resource: chrome://{host}/"
            )
        async with http.ws_connect(relay.browser.cdp_endpoint) as direct:
            infos = (await Cdp(direct).send("Target.getTargets"))["result"]["targetInfos"]
        assert [info["url"] for info in infos] == ["about:blank#blocked"]
