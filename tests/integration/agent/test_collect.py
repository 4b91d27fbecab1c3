"""Results on request (collect) in real Chromium: console, network log, HAR, timing, cookies.

Tasks run on the shared pool, whose egress guard refuses metadata addresses such as
the one /observed loads an image from. A session's commands report what was
recorded since the previous command that collected the same kind.
"""

import json
from collections.abc import Callable
from typing import Any

import pytest

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import Capture
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.sessions.commands import run_command
from farm_agent.sessions.manager import SessionManager
from farm_agent.sessions.session import OpenSession
from farm_agent.settings import AgentSettings
from tests.integration.agent.conftest import open_session
from tests.integration.agent.fakes import FakeUploader, keeper_of
from tests.pages import Site, serve_site

pytestmark = pytest.mark.integration

EVERYTHING = tasks_pb2.CollectOptions(
    console=True, network=True, har=True, timing=True, cookies=True
)
REFUSED_URL = "http://169.254.169.254/refused.png"


@pytest.fixture(scope="module")
def site() -> Any:
    with serve_site() as served:
        yield served


@pytest.fixture
def runner(
    shared_pool: BrowserPool, make_settings: Callable[..., AgentSettings]
) -> BrowserSpecRunner:
    return BrowserSpecRunner(shared_pool, make_settings())


async def observed(
    runner: BrowserSpecRunner, site: Site, collect: tasks_pb2.CollectOptions
) -> Capture:
    """Runs a task on /observed (its URL with a secret query) that collects `collect`."""
    spec = tasks_pb2.TaskSpec(
        url=site.url("/observed?token=hush-page"),
        timeout_ms=15_000,
        content=tasks_pb2.ContentOptions(),
        collect=collect,
    )
    return await runner.run(spec)


def by_url(capture: Capture) -> dict[str, tasks_pb2.NetworkRequest]:
    return {request.url: request for request in capture.result.network}


async def test_console_messages_at_each_level_and_the_uncaught_error_with_their_sources(
    runner: BrowserSpecRunner, site: Site
) -> None:
    capture = await observed(runner, site, tasks_pb2.CollectOptions(console=True))

    messages = {(m.level, m.text): m for m in capture.result.console}
    page = site.url("/observed")
    assert messages[("log", "a log")].source == f"{page}:7"
    assert {("info", "an info"), ("debug", "a debug"), ("error", "an error")} <= set(messages)
    assert messages[("warning", "a warning from a script")].source == site.url("/observed.js:1")
    assert messages[("error", "Uncaught Error: boom")].source == f"{page}:11"
    assert all("?" not in m.source and m.time.seconds > 0 for m in capture.result.console)
    assert not capture.result.network
    assert not capture.artifacts[1:], "only the content artifact: no HAR was asked for"


async def test_network_log_lists_the_ok_the_missing_and_the_refused_without_queries(
    runner: BrowserSpecRunner, site: Site
) -> None:
    capture = await observed(runner, site, tasks_pb2.CollectOptions(network=True))

    requests = by_url(capture)
    document, script = requests[site.url("/observed")], requests[site.url("/observed.js")]
    assert (document.method, document.status, document.resource_type) == ("GET", 200, "document")
    assert (script.status, script.resource_type, script.failure) == (200, "script", "")
    assert script.size_bytes == len(b'console.warn("a warning from a script");')
    assert document.duration_ms > 0
    missing = requests[site.url("/missing.png")]
    assert (missing.status, missing.resource_type) == (404, "image")
    refused = requests[REFUSED_URL]
    assert (refused.status, refused.size_bytes) == (0, 0)
    assert refused.failure.startswith("refused by the egress guard: 169.254.169.254 is")
    assert all("?" not in url for url in requests)
    assert not capture.result.console


async def test_har_parses_and_lists_the_requests_without_secrets(
    runner: BrowserSpecRunner, site: Site
) -> None:
    capture = await observed(runner, site, tasks_pb2.CollectOptions(har=True))

    [_content, har_artifact] = capture.artifacts
    assert (har_artifact.kind, har_artifact.content_type, har_artifact.name) == (
        tasks_pb2.ARTIFACT_KIND_HAR,
        "application/json",
        "har",
    )
    assert b"hush-" not in har_artifact.data, "a query string reached the HAR"
    har = json.loads(har_artifact.data)["log"]
    assert har["version"] == "1.2"
    entries = {entry["request"]["url"]: entry for entry in har["entries"]}
    assert {site.url("/observed"), site.url("/observed.js"), site.url("/missing.png")} <= set(
        entries
    )
    document = entries[site.url("/observed")]
    assert document["response"]["status"] == 200
    assert document["response"]["content"]["mimeType"] == "text/html; charset=utf-8"
    assert document["time"] > 0
    assert entries[site.url("/missing.png")]["response"]["status"] == 404
    assert entries[REFUSED_URL]["_failure"].startswith("refused by the egress guard")
    referers = [
        header["value"]
        for entry in har["entries"]
        for header in entry["request"]["headers"]
        if header["name"].lower() == "referer"
    ]
    assert site.url("/observed") in referers
    assert not capture.result.network, "the HAR alone does not fill the network log"


async def test_timing_of_a_page_that_paints(runner: BrowserSpecRunner, site: Site) -> None:
    capture = await observed(runner, site, tasks_pb2.CollectOptions(timing=True))

    timing = capture.result.timing
    assert timing.ttfb_ms > 0
    assert timing.fcp_ms > 0
    assert timing.lcp_ms >= timing.fcp_ms
    assert timing.ttfb_ms <= timing.dom_content_loaded_ms <= timing.load_ms
    assert timing.cls >= 0


async def timing_of(runner: BrowserSpecRunner, url: str) -> tasks_pb2.PageTiming:
    """The timing a task on `url` collects."""
    spec = tasks_pb2.TaskSpec(
        url=url, timeout_ms=15_000, collect=tasks_pb2.CollectOptions(timing=True)
    )
    return (await runner.run(spec)).result.timing


async def test_timing_waits_for_a_first_contentful_paint_that_comes_after_the_load(
    runner: BrowserSpecRunner, site: Site
) -> None:
    timing = await timing_of(runner, site.url("/late-paint"))

    # The page's first content appears a second after its load event.
    assert timing.fcp_ms >= 1000
    assert timing.fcp_ms >= timing.load_ms
    assert timing.lcp_ms >= timing.fcp_ms


async def test_timing_of_a_page_that_paints_nothing_has_no_first_contentful_paint(
    runner: BrowserSpecRunner, site: Site
) -> None:
    timing = await timing_of(runner, site.url("/unpainted"))

    assert timing.load_ms > 0
    assert (timing.fcp_ms, timing.lcp_ms) == (0, 0)


async def test_cookies_the_page_set_are_in_the_result(
    runner: BrowserSpecRunner, site: Site
) -> None:
    capture = await observed(runner, site, tasks_pb2.CollectOptions(cookies=True))

    [cookie] = capture.result.cookies
    assert (cookie.name, cookie.value, cookie.domain, cookie.path) == (
        "flavour",
        "oat",
        "127.0.0.1",
        "/",
    )
    assert (cookie.expires, cookie.http_only, cookie.secure) == (0, False, False)
    assert cookie.same_site == tasks_pb2.SAME_SITE_LAX


async def test_nothing_is_collected_unless_asked(runner: BrowserSpecRunner, site: Site) -> None:
    capture = await observed(runner, site, tasks_pb2.CollectOptions())

    result = capture.result
    assert (list(result.console), list(result.network), list(result.cookies)) == ([], [], [])
    assert not result.HasField("timing")
    assert len(capture.artifacts) == 1


@pytest.fixture
async def session(manager: SessionManager) -> OpenSession:
    """A session as the manager opens it: its own browser, egress listener and observer."""
    return await open_session(manager, tasks_pb2.Viewport(width=1280, height=800))


async def command(
    session: OpenSession, collect: tasks_pb2.CollectOptions, url: str = "", script: str = ""
) -> tasks_pb2.TaskResult:
    order = sessions_pb2.SessionCommand(url=url, timeout_ms=15_000, collect=collect)
    if script:
        order.script.source = script
    return await run_command(session, order, keeper_of(FakeUploader()), 100_000)


async def test_a_session_command_reports_what_came_since_the_previous_one_that_collected_it(
    session: OpenSession, site: Site
) -> None:
    console = tasks_pb2.CollectOptions(console=True)
    network = tasks_pb2.CollectOptions(network=True)

    first = await command(session, console, url=site.url("/observed"))
    assert {"a log", "Uncaught Error: boom"} <= {m.text for m in first.console}
    assert not first.network

    second = await command(session, console, script="() => { console.log('second'); }")
    # Besides, perhaps, the page's favicon that is not there (a 404 after the load).
    assert ("log", "second") in [(m.level, m.text) for m in second.console]
    assert not {"a log", "Uncaught Error: boom"} & {m.text for m in second.console}

    # The network log was not collected yet: the first command's requests are there too.
    fetch = "() => fetch('/page?key=hush').then((answer) => answer.text()).then(() => 1)"
    third = await command(session, network, script=fetch)
    assert {site.url("/observed"), site.url("/page")} <= {r.url for r in third.network}

    fourth = await command(session, network, script=fetch.replace("/page", "/two"))
    assert [(r.url, r.status) for r in fourth.network] == [(site.url("/two"), 404)]

    state = await command(session, tasks_pb2.CollectOptions(timing=True, cookies=True))
    assert state.timing.fcp_ms > 0
    assert [(c.name, c.value) for c in state.cookies] == [("flavour", "oat")]
