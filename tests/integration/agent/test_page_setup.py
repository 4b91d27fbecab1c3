"""A task's page setup in real Chromium: what the site and the page see, what is refused.

/echo of the test site shows the request's headers as the server got them and what
the page's script sees (user agent, language, time zone, scale, touch, width,
cookies); /resources loads an image, a stylesheet, a font, a video and a tracker
pixel, each counted by the site. The tracker is "b.scorecardresearch.com" (on the
list, and not on Chromium's HSTS preload list, which would turn http into https),
which this module's egress guard resolves to the test site, so a pixel that is not
refused reaches the site and is counted.
"""

import functools
import ipaddress
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from google.protobuf import json_format

import farm_agent.browser.pool
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.browser.trackers import is_tracker
from farm_agent.egress.proxy import EgressProxy
from farm_agent.settings import AgentSettings
from farm_core.egress.allowlist import IpAddress
from farm_core.egress.resolution import system_resolver
from tests.integration.agent.conftest import CHROMIUM, HAVE_CHROMIUM, agent_settings
from tests.pages import Site
from tests.toolbox_pages import ECHO_FIELDS

pytestmark = pytest.mark.integration

TRACKER = "b.scorecardresearch.com"


async def resolve_tracker_to_the_site(host: str, port: int) -> list[IpAddress]:
    if host == TRACKER:
        return [ipaddress.ip_address("127.0.0.1")]
    return await system_resolver(host, port)


@pytest.fixture(scope="module")
async def tracker_pool(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BrowserPool]:
    """A pool whose egress guard takes the tracker's name for the test site's address."""
    if not HAVE_CHROMIUM:
        pytest.skip(f"no Chromium at {CHROMIUM}")
    pool = BrowserPool(agent_settings(tmp_path_factory.mktemp("t"), id="trackers"))
    # The pool builds its guard in start(); the resolver is the guard's seam for DNS.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            farm_agent.browser.pool,
            "EgressProxy",
            functools.partial(EgressProxy, resolver=resolve_tracker_to_the_site),
        )
        await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def runner(
    tracker_pool: BrowserPool, make_settings: Callable[..., AgentSettings]
) -> BrowserSpecRunner:
    return BrowserSpecRunner(tracker_pool, make_settings())


def task(url: str, fields: dict[str, str], **spec: Any) -> tasks_pb2.TaskSpec:
    return json_format.ParseDict(
        {"url": url, "timeoutMs": 15000, "extract": {"fields": fields}, **spec},
        tasks_pb2.TaskSpec(),
    )


async def echo(runner: BrowserSpecRunner, site: Site, **spec: Any) -> dict[str, str]:
    """What /echo showed for a task with these spec fields (JSON names)."""
    capture = await runner.run(task(site.url("/echo"), ECHO_FIELDS, **spec))
    return {
        name: str(value) for name, value in json_format.MessageToDict(capture.result.json).items()
    }


async def test_without_setup_the_page_sees_the_browsers_own_identity(
    runner: BrowserSpecRunner, site: Site
) -> None:
    seen = await echo(runner, site)
    assert seen["js"] == "on"
    assert seen["h-ua"] == seen["ua"] and "FarmBot" not in seen["ua"]
    assert seen["lang"] == "en-US" and seen["tz"] == "UTC"
    assert (seen["dpr"], seen["touch"], seen["width"]) == ("1", "0", "1280")
    assert seen["h-test"] == seen["h-cookie"] == seen["cookie"] == ""


async def test_user_agent_headers_locale_and_time_zone_reach_the_site_and_the_page(
    runner: BrowserSpecRunner, site: Site
) -> None:
    seen = await echo(
        runner,
        site,
        setup={
            "userAgent": "FarmBot/1.0",
            "extraHeaders": {"X-Farm-Test": "set by the task"},
            "locale": "de-DE",
            "timezone": "Asia/Tokyo",
        },
    )
    assert (seen["h-ua"], seen["ua"]) == ("FarmBot/1.0", "FarmBot/1.0")
    assert seen["h-test"] == "set by the task"
    assert seen["h-lang"].startswith("de-DE") and seen["lang"] == "de-DE"
    assert seen["tz"] == "Asia/Tokyo"


async def test_scale_mobile_and_touch_are_emulated(runner: BrowserSpecRunner, site: Site) -> None:
    seen = await echo(
        runner,
        site,
        viewport={"width": 400, "height": 700},
        setup={"deviceScaleFactor": 2.5, "isMobile": True, "hasTouch": True},
    )
    assert (seen["dpr"], seen["width"]) == ("2.5", "400")
    assert int(seen["touch"]) > 0


async def test_a_device_by_name_gets_its_user_agent_unless_the_setup_gives_one(
    runner: BrowserSpecRunner, site: Site
) -> None:
    device = await echo(runner, site, device="iPhone 13")
    assert "iPhone" in device["h-ua"] and device["dpr"] == "3" and device["width"] == "390"
    mine = await echo(runner, site, device="iPhone 13", setup={"userAgent": "FarmBot/2.0"})
    assert mine["h-ua"] == "FarmBot/2.0" and mine["dpr"] == "3"


async def test_with_javascript_off_the_pages_script_does_not_run(
    runner: BrowserSpecRunner, site: Site
) -> None:
    seen = await echo(runner, site, setup={"javascriptDisabled": True})
    assert seen["js"] == "off" and seen["ua"] == ""


async def test_cookies_go_with_the_first_request_and_http_only_ones_stay_hidden(
    runner: BrowserSpecRunner, site: Site
) -> None:
    cookies = [
        {"name": "sid", "value": "s3cret", "domain": "127.0.0.1", "path": "/", "httpOnly": True},
        {"name": "theme", "value": "dark", "url": site.url("/")},
        {"name": "elsewhere", "value": "no", "domain": "example.com", "path": "/"},
        {"name": "other_path", "value": "no", "domain": "127.0.0.1", "path": "/shop"},
    ]
    seen = await echo(runner, site, setup={"cookies": cookies})
    assert sorted(seen["h-cookie"].split("; ")) == ["sid=s3cret", "theme=dark"]
    assert seen["cookie"] == "theme=dark"


RESOURCES = {"image": "#image", "tracker": "#tracker"}


def hits(site: Site, kind: str) -> int:
    with site.lock:
        return site.hits.get(f"asset/{kind}", 0)


async def load_resources(
    runner: BrowserSpecRunner, site: Site, setup: dict[str, Any]
) -> tuple[dict[str, str], dict[str, int]]:
    """What /resources showed, and how many requests of each kind reached the site."""
    before = {kind: hits(site, kind) for kind in ("image", "style", "font", "media", "tracker")}
    tracker_origin = site.url("").replace("127.0.0.1", TRACKER)
    spec = task(
        site.url(f"/resources?tracker={tracker_origin}"),
        RESOURCES,
        setup=setup,
        steps=[
            {"waitFor": "#image:not(:text('pending'))"},
            {"waitFor": "#tracker:not(:text('none'))"},
            {"waitFor": "#media:not(:text('pending'))"},
        ],
    )
    capture = await runner.run(spec)
    shown = {
        name: str(value) for name, value in json_format.MessageToDict(capture.result.json).items()
    }
    return shown, {kind: hits(site, kind) - count for kind, count in before.items()}


async def test_every_resource_and_the_tracker_load_when_nothing_is_blocked(
    runner: BrowserSpecRunner, site: Site
) -> None:
    shown, reached = await load_resources(runner, site, {})
    assert shown == {"image": "loaded", "tracker": "loaded"}
    assert all(count >= 1 for count in reached.values()), reached


async def test_blocked_resource_types_are_refused_and_never_reach_the_site(
    runner: BrowserSpecRunner, site: Site
) -> None:
    kinds = [
        "RESOURCE_TYPE_IMAGE",
        "RESOURCE_TYPE_FONT",
        "RESOURCE_TYPE_MEDIA",
        "RESOURCE_TYPE_STYLESHEET",
    ]
    shown, reached = await load_resources(runner, site, {"blockResources": kinds})
    assert shown["image"] == "failed"
    assert reached == {"image": 0, "style": 0, "font": 0, "media": 0, "tracker": 0}


async def test_only_images_blocked_leaves_the_stylesheet_alone(
    runner: BrowserSpecRunner, site: Site
) -> None:
    shown, reached = await load_resources(runner, site, {"blockResources": ["RESOURCE_TYPE_IMAGE"]})
    assert shown == {"image": "failed", "tracker": "failed"}
    assert reached["image"] == reached["tracker"] == 0
    assert reached["style"] >= 1


async def test_block_trackers_refuses_the_tracker_and_nothing_else(
    runner: BrowserSpecRunner, site: Site
) -> None:
    shown, reached = await load_resources(runner, site, {"blockTrackers": True})
    assert shown == {"image": "loaded", "tracker": "failed"}
    assert reached["tracker"] == 0
    assert reached["image"] >= 1


@pytest.mark.parametrize(
    ("host", "listed"),
    [
        ("www.google-analytics.com", True),
        ("google-analytics.com", True),
        ("stats.g.doubleclick.net", True),
        ("adservice.google.com", True),
        ("WWW.GOOGLE-ANALYTICS.COM.", True),
        ("google.com", False),
        ("notgoogle-analytics.com", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_tracker_hosts_match_themselves_and_their_subdomains(host: str, listed: bool) -> None:
    assert is_tracker(host) is listed
