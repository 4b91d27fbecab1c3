"""The egress guard in real Chromium: what pages may not reach, and how a task tells it.

The test site is served on 127.0.0.2 and only 127.0.0.2/32 is allowed, so requests to
127.0.0.1, [::1] and localhost must be refused; listeners there record anything that
reaches them (nothing may). Linux routes all of 127.0.0.0/8 to the loopback device.
Private and metadata addresses (10.0.0.1, 169.254.169.254, fd00:ec2::254), host names
that resolve to them, and service workers are tested in test_egress_private.py. The
listeners and the test site are this folder's conftest's.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.js import JetStreamContext

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from tests.integration.agent.conftest import (
    FAILED,
    SUCCEEDED,
    Events,
    SettingsFactory,
    StartIntake,
    agent_settings,
    publish,
    running_pool,
)
from tests.integration.agent.egress.conftest import (
    SITE_HOST,
    Targets,
    blocked_count,
    blocked_url_message,
    reach,
)
from tests.pages import Site

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def guarded_pool(
    tmp_path_factory: pytest.TempPathFactory, targets: Targets
) -> AsyncIterator[BrowserPool]:
    """A pool that may reach only 127.0.0.2, where one port is a farm service."""
    settings = agent_settings(
        tmp_path_factory.mktemp("g"),
        id="guarded",
        allow=f"{SITE_HOST}/32",
        farm_addresses=f"{SITE_HOST}:{targets.farm_service.port}",
    )
    async with running_pool(settings) as pool:
        yield pool


@pytest.fixture
def runner(guarded_pool: BrowserPool, make_settings: SettingsFactory) -> BrowserSpecRunner:
    return BrowserSpecRunner(guarded_pool, make_settings())


async def test_an_allowed_origin_is_reached_by_img_iframe_fetch_and_websocket(
    runner: BrowserSpecRunner, guarded_site: Site, targets: Targets
) -> None:
    capture = await runner.run(reach(guarded_site, targets.allowed.origin))
    assert capture.result.json.struct_value.fields["fetch"].string_value == "got ok"
    assert capture.result.json.struct_value.fields["ws"].string_value == "got pong"
    assert {"/img", "/frame", "/fetch", "/ws"} <= set(targets.allowed.paths)
    assert list(capture.result.blocked_requests) == []


@pytest.mark.parametrize("which", ["127.0.0.1", "[::1]", "localhost"])
async def test_sub_resources_to_loopback_are_refused_and_listed_but_the_page_loads(
    runner: BrowserSpecRunner, guarded_site: Site, targets: Targets, which: str
) -> None:
    listener = targets.ipv6 if which == "[::1]" else targets.ipv4
    origin = f"http://{which}:{listener.port}"
    before = blocked_count("loopback")
    capture = await runner.run(reach(guarded_site, origin))
    fields = capture.result.json.struct_value.fields
    assert (fields["fetch"].string_value, fields["ws"].string_value) == ("failed", "failed")
    assert capture.result.http_status == 200
    blocked = {request.target: request for request in capture.result.blocked_requests}
    # Plain http is seen whole; the WebSocket goes through CONNECT, seen as host:port.
    assert {f"{origin}/img", f"{origin}/frame", f"{origin}/fetch"} <= set(blocked)
    assert f"{which}:{listener.port}" in blocked
    assert {request.reason for request in blocked.values()} == {"loopback"}
    assert all("FARM_AGENT_ALLOW can open it" in r.message for r in blocked.values())
    if which == "localhost":
        assert "localhost resolves to" in blocked[f"{origin}/img"].message
    assert blocked_count("loopback") - before >= 4


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://127.0.0.1:{v4}/", "url: 127.0.0.1 is a loopback address"),
        ("https://127.0.0.1:{v4}/", "url: 127.0.0.1 is a loopback address"),
        ("http://[::1]:{v6}/", "url: ::1 is a loopback address"),
        ("http://localhost:{v4}/", "url: localhost resolves to 127.0.0.1, a loopback address"),
    ],
)
async def test_a_first_navigation_to_loopback_fails_with_blocked_url(
    runner: BrowserSpecRunner, targets: Targets, url: str, named: str
) -> None:
    message = await blocked_url_message(
        runner, url.format(v4=targets.ipv4.port, v6=targets.ipv6.port)
    )
    assert message.startswith(named)
    assert message.endswith("FARM_AGENT_ALLOW can open it")


async def test_a_redirect_to_loopback_fails_with_blocked_url(
    runner: BrowserSpecRunner, guarded_site: Site, targets: Targets
) -> None:
    target = f"{targets.ipv4.origin}/secret"
    message = await blocked_url_message(runner, guarded_site.url(f"/redirect?to={target}"))
    assert message == (
        f"url: redirected to {target}: 127.0.0.1 is a loopback address; "
        "FARM_AGENT_ALLOW can open it"
    )


async def test_a_farm_service_is_refused_though_its_network_is_allowed(
    runner: BrowserSpecRunner, targets: Targets
) -> None:
    message = await blocked_url_message(runner, targets.farm_service.origin + "/")
    assert message == (
        f"url: {SITE_HOST}:{targets.farm_service.port} is one of the farm's own services; "
        "FARM_AGENT_ALLOW cannot open it"
    )


async def test_a_non_http_url_fails_with_blocked_url(runner: BrowserSpecRunner) -> None:
    message = await blocked_url_message(runner, "file:///etc/hostname")
    assert message == "url: the scheme 'file' is refused; only http and https"


async def test_a_blocked_task_fails_at_once_without_a_retry(
    start_intake: StartIntake, js: JetStreamContext, events: Events, tmp_path: Path
) -> None:
    # The shared pool allows 127.0.0.0/8, but 127.0.0.1:7102 is its storage service.
    await start_intake()
    spec = tasks_pb2.TaskSpec(
        url="http://127.0.0.1:7102/", max_attempts=3, content=tasks_pb2.ContentOptions()
    )
    task_id = await publish(js, spec)
    final = await events.final(task_id)
    assert final.status == FAILED
    assert final.error.code == "BLOCKED_URL"
    assert not final.error.retryable
    assert "one of the farm's own services" in final.error.message
    assert final.attempt == 1


async def test_webrtc_sends_no_udp_to_a_stun_server_on_loopback(
    runner: BrowserSpecRunner, guarded_site: Site
) -> None:
    received: list[tuple[str, int]] = []

    class Recorder(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, address: tuple[str, int]) -> None:
            received.append(address)

    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        Recorder, local_addr=("127.0.0.1", 0)
    )
    try:
        stun_port = transport.get_extra_info("sockname")[1]
        capture = await runner.run(
            tasks_pb2.TaskSpec(
                url=guarded_site.url(f"/webrtc?stun=127.0.0.1:{stun_port}"),
                timeout_ms=10_000,
                steps=[tasks_pb2.Step(wait_for="#ice:not(:text('pending'))")],
                extract=tasks_pb2.ExtractOptions(fields={"ice": "#ice"}),
            )
        )
        assert capture.result.json.struct_value.fields["ice"].string_value == "done 0"
        await asyncio.sleep(0.2)
    finally:
        transport.close()
    assert received == []


async def test_refused_sub_resources_are_in_the_tasks_result_and_the_agent_log(
    start_intake: StartIntake,
    js: JetStreamContext,
    events: Events,
    site: Site,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The shared pool allows 127.0.0.0/8; 127.0.0.1:7102 is its storage service.
    await start_intake()
    spec = tasks_pb2.TaskSpec(
        url=site.url("/reach?to=http://127.0.0.1:7102"),
        timeout_ms=15_000,
        wait_until=tasks_pb2.WAIT_UNTIL_NETWORKIDLE,
        content=tasks_pb2.ContentOptions(),
    )
    with caplog.at_level(logging.INFO, logger="farm_agent.work.events"):
        task_id = await publish(js, spec)
        final = await events.final(task_id)
    assert final.status == SUCCEEDED
    targets = {request.target for request in final.result.blocked_requests}
    assert "http://127.0.0.1:7102/img" in targets
    assert "127.0.0.1:7102" in targets
    assert {request.reason for request in final.result.blocked_requests} == {"farm_service"}
    assert any(task_id in line and "http://127.0.0.1:7102/img" in line for line in caplog.messages)
