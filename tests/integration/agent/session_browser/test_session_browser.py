"""A session's own Chromium, reached by a CDP client through the bridge and its filter."""

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Awaitable
from pathlib import Path

import aiohttp
import psutil
import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Playwright

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.browser.temp_dirs import TempDirs
from farm_agent.errors import TaskFailure
from farm_agent.sessions.browser import LaunchOptions, SessionBrowser
from farm_agent.sessions.tabs import change_tabs
from farm_agent.sessions.warm import DEFAULT_SCREEN, start_browser
from farm_core.task_errors import ErrorCode
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import CHROMIUM, HAVE_CHROMIUM, agent_settings
from tests.integration.agent.pool_browsers import renderer_pids, renderers_frozen_as_they_start
from tests.integration.agent.session_browser.session_relay import (
    Relay,
)
from tests.pages import Site

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]


# The second with the browser's own WebUI targets, which the filter hides (see WITH_WEBUI in
# test_session_browser_webui.py).
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
