"""Spare session browsers in real Chromium: a spare whose page died does not refuse a session."""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from nats.js import JetStreamContext
from playwright.async_api import Error as PlaywrightError

from farm.sessions.v1 import sessions_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.metrics import process_tree
from farm_agent.sessions.browser import LISTENING_LINE
from farm_agent.sessions.manager import SessionManager
from farm_agent.settings import AgentSettings
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import attached_manager, open_session
from tests.integration.agent.fakes import FakeUploader

pytestmark = pytest.mark.integration


@pytest.fixture
async def manager_with_a_spare(
    shared_pool: BrowserPool,
    make_settings: Callable[..., AgentSettings],
    js: JetStreamContext,
    uploader: FakeUploader,
) -> AsyncIterator[SessionManager]:
    """A session manager that keeps one spare browser, its sessions closed after."""
    async with attached_manager(
        make_settings(session_spare_browsers=1), shared_pool, js, uploader
    ) as manager:
        yield manager


def spare_profiles(scratch: Path) -> list[Path]:
    """The profile folders of the spare session browsers running under `scratch`."""
    found = []
    for pid in process_tree(os.getpid()):
        with contextlib.suppress(OSError):
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            if any(argument.startswith("--type=") for argument in arguments):
                continue  # a helper process, not a browser
            folders = [a.removeprefix("--user-data-dir=") for a in arguments]
            found += [
                Path(folder)
                for folder in folders
                if folder.startswith(f"{scratch}/") and "/spare-" in folder
            ]
    return [folder for folder in found if (folder.parent / "chromium.log").exists()]


def devtools_endpoint(profile: Path) -> tuple[str, str]:
    """The DevTools port and browser path of the browser of `profile`, as its log names them.

    The agent gives a session browser its port, and Chromium then writes no port file.
    """
    said = (profile.parent / "chromium.log").read_text(errors="replace")
    listening = LISTENING_LINE.search(said)
    assert listening is not None, f"the browser's log names no DevTools endpoint: {said!r}"
    return listening["port"], listening["path"]


async def test_a_spare_whose_page_crashed_gives_way_to_a_fresh_browser(
    manager_with_a_spare: SessionManager,
    shared_pool: BrowserPool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = manager_with_a_spare  # attached: it starts its spare
    # Ready, as the manager counts it: Playwright connected, the spare's to hand out.
    await assert_eventually(
        lambda: manager.spares_ready == 1, within=30, message="no spare browser ready"
    )
    [profile] = spare_profiles(shared_pool.scratch_dir)
    port, path = devtools_endpoint(profile)
    # The spare's page dies while it waits, as when the OOM killer takes its renderer.
    spare = await shared_pool.playwright.chromium.connect_over_cdp(f"ws://127.0.0.1:{port}{path}")
    try:
        [waiting] = spare.contexts[0].pages
        crashed = asyncio.get_running_loop().create_future()
        waiting.once("crash", lambda _: crashed.set_result(True))
        cdp = await spare.contexts[0].new_cdp_session(waiting)
        # Chromium answers nothing: the page that would answer is gone.
        crash = asyncio.create_task(cdp.send("Page.crash"))
        await asyncio.wait_for(crashed, 10)
        crash.cancel()
        with contextlib.suppress(PlaywrightError, asyncio.CancelledError):
            await crash
    finally:
        await spare.close()

    # The default screen: the spare's.
    session = await open_session(manager, spec=sessions_pb2.SessionSpec())

    page = await session.browser.page()
    assert await page.evaluate("1 + 1") == 2
    assert str(profile) not in str(session.folder)
    # The crashed spare was handed out and failed its setup; not skipped before.
    assert "a spare browser failed its setup" in caplog.text
