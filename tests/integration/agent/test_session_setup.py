"""A session's page setup in its own Chromium: at open, changed by commands, reset, new pages.

Each test opens a session browser as the agent does (its own egress listener, the
SessionSpec's setup applied to its first page) and runs commands on it with
run_command; /echo and /resources of the test site tell what the site and the page
see.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from google.protobuf import json_format

from farm.sessions.v1 import sessions_pb2
from farm_agent.errors import TaskFailure
from farm_agent.sessions.commands import run_command
from farm_agent.sessions.manager import SessionManager
from farm_agent.sessions.session import OpenSession
from farm_core.task_errors import ErrorCode
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import HAVE_CHROMIUM, open_session
from tests.integration.agent.fakes import FakeUploader, keeper_of
from tests.pages import Site
from tests.toolbox_pages import ECHO_FIELDS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]

OpenWith = Callable[..., Awaitable[OpenSession]]
TIMEZONE = "() => Intl.DateTimeFormat().resolvedOptions().timeZone"


@pytest.fixture
def open_with(manager: SessionManager) -> OpenWith:
    """Opens sessions of the manager with a SessionSpec given as JSON."""

    async def open_given(**spec_fields: Any) -> OpenSession:
        spec = json_format.ParseDict(spec_fields, sessions_pb2.SessionSpec())
        return await open_session(manager, spec=spec)

    return open_given


async def run(session: OpenSession, **command: Any) -> dict[str, Any]:
    """Runs a command given as JSON; its result's extracted JSON."""
    parsed = json_format.ParseDict({"timeoutMs": 15000, **command}, sessions_pb2.SessionCommand())
    result = await run_command(session, parsed, keeper_of(FakeUploader()), 100_000)
    return dict(json_format.MessageToDict(result.json)) if result.HasField("json") else {}


async def echo(session: OpenSession, site: Site, **command: Any) -> dict[str, str]:
    seen = await run(session, url=site.url("/echo"), extract={"fields": ECHO_FIELDS}, **command)
    return {name: str(value) for name, value in seen.items()}


async def test_the_specs_setup_is_applied_when_the_session_opens(
    open_with: OpenWith, site: Site
) -> None:
    session = await open_with(
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
    open_with: OpenWith, site: Site
) -> None:
    session = await open_with(setup={"timezone": "Europe/Berlin"})
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
    open_with: OpenWith, site: Site
) -> None:
    session = await open_with(setup={"locale": "de-DE"})
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
    open_with: OpenWith, site: Site
) -> None:
    session = await open_with()
    resources = {"url": site.url("/resources"), "extract": {"fields": {"image": "#image"}}}
    loaded = [{"waitFor": "#image:not(:text('pending'))"}]
    blocked = await run(
        session, setup={"blockResources": ["RESOURCE_TYPE_IMAGE"]}, steps=loaded, **resources
    )
    assert blocked == {"image": "failed"}
    assert await run(session, resetSetup=True, steps=loaded, **resources) == {"image": "loaded"}


async def test_a_page_opened_later_gets_the_sessions_setup(open_with: OpenWith, site: Site) -> None:
    session = await open_with()
    await run(session, setup={"timezone": "Asia/Tokyo"})
    page = await session.browser.context.new_page()

    async def emulated() -> bool:
        return bool(await page.evaluate(TIMEZONE) == "Asia/Tokyo")

    await assert_eventually(emulated, within=10, message="the new page kept UTC")


async def test_an_unknown_device_fails_the_command_and_changes_nothing(
    open_with: OpenWith, site: Site
) -> None:
    session = await open_with(setup={"timezone": "Asia/Tokyo"})
    with pytest.raises(TaskFailure) as caught:
        await run(session, device="Nokia 3310", setup={"timezone": "Europe/Paris"})
    assert caught.value.code is ErrorCode.INVALID_DEVICE
    assert (await echo(session, site))["tz"] == "Asia/Tokyo"
