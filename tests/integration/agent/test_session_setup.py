"""A session's page setup in its own Chromium: at open, changed by commands, reset, new pages.

Each test opens a session browser as the agent does (its own egress listener, the
SessionSpec's setup applied to its first page) and runs commands on it with
run_command; /echo and /resources of the test site tell what the site and the page
see.
"""

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from farm.sessions.v1 import sessions_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.errors import TaskFailure
from farm_agent.sessions.commands import run_command
from farm_agent.sessions.screencast import Screencast
from farm_agent.sessions.session import OpenSession
from farm_agent.sessions.setup import SessionSetup
from farm_agent.sessions.warm import DEFAULT_SCREEN, start_browser
from farm_core.task_errors import ErrorCode
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import HAVE_CHROMIUM, FakeUploader, agent_settings
from tests.integration.agent.test_page_setup import ECHO_FIELDS
from tests.pages import Site

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]

OpenWith = Callable[..., Awaitable[OpenSession]]
TIMEZONE = "() => Intl.DateTimeFormat().resolvedOptions().timeZone"


@pytest.fixture
async def open_session(shared_pool: BrowserPool, tmp_path: Path) -> AsyncIterator[OpenWith]:
    """Opens sessions with a SessionSpec given as JSON; closes them at the end."""
    opened: list[OpenSession] = []

    async def open_with(**spec_fields: Any) -> OpenSession:
        spec = json_format.ParseDict(spec_fields, sessions_pb2.SessionSpec())
        settings = agent_settings(tmp_path)
        folder = tmp_path / f"session-{len(opened)}"
        warm = await start_browser(shared_pool, settings, DEFAULT_SCREEN, folder)
        session = OpenSession(
            session_id=f"ses_{len(opened)}",
            tenant="acme",
            spec=spec,
            browser=warm.browser,
            egress=warm.egress,
            screencast=Screencast(DEFAULT_SCREEN.width, DEFAULT_SCREEN.height),
            expires_at=time.monotonic() + 600,
            folder=folder,
            setup=SessionSetup(warm.browser.context, shared_pool.devices, spec),
            resources=warm.resources,
        )
        opened.append(session)
        await session.setup.open(await warm.browser.page())
        warm.browser.context.on(
            "page", lambda page: session.in_background(session.setup.cover_quietly(page))
        )
        return session

    yield open_with
    for session in opened:
        for task in list(session.background):
            task.cancel()
        await session.resources.aclose()


async def run(session: OpenSession, **command: Any) -> dict[str, Any]:
    """Runs a command given as JSON; its result's extracted JSON."""
    parsed = json_format.ParseDict({"timeoutMs": 15000, **command}, sessions_pb2.SessionCommand())
    result = await run_command(session, parsed, FakeUploader(), 100_000)
    return dict(json_format.MessageToDict(result.json)) if result.HasField("json") else {}


async def echo(session: OpenSession, site: Site, **command: Any) -> dict[str, str]:
    seen = await run(session, url=site.url("/echo"), extract={"fields": ECHO_FIELDS}, **command)
    return {name: str(value) for name, value in seen.items()}


async def test_the_specs_setup_is_applied_when_the_session_opens(
    open_session: OpenWith, site: Site
) -> None:
    session = await open_session(
        viewport={"width": 800, "height": 600},
        setup={
            "userAgent": "FarmSession/1.0",
            "extraHeaders": {"X-Farm-Test": "from the spec"},
            "locale": "fr-FR",
            "timezone": "America/New_York",
            "cookies": [{"name": "sid", "value": "opened", "url": site.url("/")}],
        },
    )
    seen = await echo(session, site)
    assert (seen["h-ua"], seen["ua"]) == ("FarmSession/1.0", "FarmSession/1.0")
    assert seen["h-test"] == "from the spec"
    assert seen["h-lang"].startswith("fr-FR") and seen["lang"] == "fr-FR"
    assert seen["tz"] == "America/New_York"
    assert seen["h-cookie"] == "sid=opened"
    assert seen["width"] == "800"


async def test_a_device_emulated_by_a_command_lasts_until_reset(
    open_session: OpenWith, site: Site
) -> None:
    session = await open_session(setup={"timezone": "Europe/Berlin"})
    before = await echo(session, site)
    assert (before["dpr"], before["width"], before["touch"]) == ("1", "1280", "0")

    emulated = await echo(session, site, device="iPhone 13")
    assert "iPhone" in emulated["h-ua"] and "iPhone" in emulated["ua"]
    assert (emulated["dpr"], emulated["width"]) == ("3", "390")
    assert int(emulated["touch"]) > 0
    # Later commands keep it; the spec's own setup stays as it was.
    later = await echo(session, site)
    assert (later["dpr"], later["width"], later["tz"]) == ("3", "390", "Europe/Berlin")

    reset = await echo(session, site, resetSetup=True)
    assert (reset["dpr"], reset["width"], reset["touch"]) == ("1", "1280", "0")
    assert reset["h-ua"] == before["h-ua"] and reset["tz"] == "Europe/Berlin"


async def test_a_commands_setup_changes_the_given_fields_and_reset_undoes_them(
    open_session: OpenWith, site: Site
) -> None:
    session = await open_session(setup={"locale": "de-DE"})
    changed = await echo(
        session,
        site,
        viewport={"width": 500, "height": 700},
        setup={
            "timezone": "Asia/Tokyo",
            "extraHeaders": {"X-Farm-Test": "from a command"},
            "javascriptDisabled": True,
        },
    )
    # JavaScript is off: only what the server saw shows.
    assert changed["js"] == "off" and changed["h-test"] == "from a command"
    assert changed["h-lang"].startswith("de-DE")
    with_js = await echo(session, site, resetSetup=True, setup={"timezone": "Asia/Tokyo"})
    assert with_js["js"] == "on" and with_js["tz"] == "Asia/Tokyo"
    assert (with_js["h-test"], with_js["width"], with_js["lang"]) == ("", "1280", "de-DE")


async def test_blocking_set_by_a_command_refuses_images_until_reset(
    open_session: OpenWith, site: Site
) -> None:
    session = await open_session()
    resources = {"url": site.url("/resources"), "extract": {"fields": {"image": "#image"}}}
    loaded = [{"waitFor": "#image:not(:text('pending'))"}]
    blocked = await run(
        session, setup={"blockResources": ["RESOURCE_TYPE_IMAGE"]}, steps=loaded, **resources
    )
    assert blocked == {"image": "failed"}
    assert await run(session, resetSetup=True, steps=loaded, **resources) == {"image": "loaded"}


async def test_a_page_opened_later_gets_the_sessions_setup(
    open_session: OpenWith, site: Site
) -> None:
    session = await open_session()
    await run(session, setup={"timezone": "Asia/Tokyo"})
    page = await session.browser.context.new_page()

    async def emulated() -> bool:
        return bool(await page.evaluate(TIMEZONE) == "Asia/Tokyo")

    await assert_eventually(emulated, within=10, message="the new page kept UTC")


async def test_an_unknown_device_fails_the_command_and_changes_nothing(
    open_session: OpenWith, site: Site
) -> None:
    session = await open_session(setup={"timezone": "Asia/Tokyo"})
    with pytest.raises(TaskFailure) as caught:
        await run(session, device="Nokia 3310", setup={"timezone": "Europe/Paris"})
    assert caught.value.code is ErrorCode.INVALID_DEVICE
    assert (await echo(session, site))["tz"] == "Asia/Tokyo"
