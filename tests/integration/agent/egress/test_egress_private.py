"""The egress guard in real Chromium against private, metadata and service-worker egress.

Pages on the allowed test site (127.0.0.2) try to reach 10.0.0.1, 169.254.169.254 and
fd00:ec2::254 by literal and by host names whose DNS answers the test gives the guard
(".test" names; everything else resolves as usual). No listener of the tests is there:
the refusals are told by the task (BLOCKED_URL, blockedRequests), and a working guard
opens no connection to those addresses at all; its short connect timeout makes a
broken guard fail these tests fast rather than hang. A service worker of the test site
tries to reach a refused loopback listener, which must record nothing.
"""

import functools
import ipaddress
from collections.abc import AsyncIterator

import pytest

import farm_agent.browser.pool
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import Capture
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.egress.proxy import EgressProxy
from farm_core.egress.allowlist import IpAddress
from farm_core.egress.resolution import system_resolver
from tests.integration.agent.conftest import SettingsFactory, agent_settings, running_pool
from tests.integration.agent.egress.conftest import (
    SITE_HOST,
    Targets,
    blocked_count,
    blocked_url_message,
    reach,
)
from tests.pages import Site

pytestmark = pytest.mark.integration

CONNECT_SECONDS = 2.0
ALLOW_SUFFIX = "FARM_AGENT_ALLOW can open it"

# The DNS answers the guard gets for the tests' own names, in this order.
TEST_NAMES: dict[str, list[str]] = {
    "allowed.test": [SITE_HOST],
    "intranet.test": ["10.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "metadata6.test": ["fd00:ec2::254"],
    # One public and one private address: the host is refused for the private one.
    "mixed.test": ["93.184.215.14", "10.0.0.1"],
}


async def resolve_test_names(host: str, port: int) -> list[IpAddress]:
    """The tests' answers for their ".test" names; the system's for everything else."""
    if host in TEST_NAMES:
        return [ipaddress.ip_address(address) for address in TEST_NAMES[host]]
    return await system_resolver(host, port)


@pytest.fixture(scope="module")
async def private_pool(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BrowserPool]:
    """A pool that may reach only 127.0.0.2, whose guard resolves the tests' names."""
    settings = agent_settings(
        tmp_path_factory.mktemp("p"),
        id="private",
        allow=f"{SITE_HOST}/32",
        egress_connect_seconds=CONNECT_SECONDS,
    )
    # The pool builds its guard in start(); the resolver is the guard's seam for DNS.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            farm_agent.browser.pool,
            "EgressProxy",
            functools.partial(EgressProxy, resolver=resolve_test_names),
        )
        async with running_pool(settings) as pool:
            yield pool


@pytest.fixture
def runner(private_pool: BrowserPool, make_settings: SettingsFactory) -> BrowserSpecRunner:
    return BrowserSpecRunner(private_pool, make_settings())


def reach_with_xhr(site: Site, origin: str) -> tasks_pb2.TaskSpec:
    """test_egress's reach(), which waits for the page's XHR too and extracts how it ended."""
    spec = reach(site, origin)
    spec.steps.append(tasks_pb2.Step(wait_for="#xhr:not(:text('pending'))"))
    spec.extract.fields["xhr"] = "#xhr"
    return spec


def fields_of(capture: Capture) -> dict[str, str]:
    """The task's extracted fields as text."""
    return {
        name: value.string_value for name, value in capture.result.json.struct_value.fields.items()
    }


async def test_a_name_the_tests_resolve_to_the_allowed_site_is_reached(
    runner: BrowserSpecRunner, guarded_site: Site, targets: Targets
) -> None:
    # The control: the injected DNS answers are what the guard connects to.
    spec = reach_with_xhr(guarded_site, f"http://allowed.test:{targets.allowed.port}")
    capture = await runner.run(spec)
    assert fields_of(capture) == {"fetch": "got ok", "xhr": "got ok", "ws": "got pong"}
    assert {"/img", "/frame", "/fetch", "/xhr", "/ws"} <= set(targets.allowed.paths)
    assert list(capture.result.blocked_requests) == []


@pytest.mark.parametrize(
    ("origin", "connect", "address", "reason", "message"),
    [
        (
            "http://10.0.0.1:8080",
            "10.0.0.1:8080",
            "10.0.0.1",
            "private",
            "10.0.0.1 is a private address",
        ),
        (
            "http://169.254.169.254/latest/meta-data",
            "169.254.169.254:80",
            "169.254.169.254",
            "metadata",
            "169.254.169.254 is a cloud metadata address",
        ),
        (
            "http://[fd00:ec2::254]/latest/meta-data",
            "[fd00:ec2::254]:80",
            "fd00:ec2::254",
            "metadata",
            "fd00:ec2::254 is a cloud metadata address",
        ),
        (
            "http://intranet.test:8080",
            "intranet.test:8080",
            "10.0.0.1",
            "private",
            "intranet.test resolves to 10.0.0.1, a private address",
        ),
        (
            "http://metadata.test/latest/meta-data",
            "metadata.test:80",
            "169.254.169.254",
            "metadata",
            "metadata.test resolves to 169.254.169.254, a cloud metadata address",
        ),
        (
            "http://metadata6.test/latest/meta-data",
            "metadata6.test:80",
            "fd00:ec2::254",
            "metadata",
            "metadata6.test resolves to fd00:ec2::254, a cloud metadata address",
        ),
        (
            "http://mixed.test:8080",
            "mixed.test:8080",
            "10.0.0.1",
            "private",
            "mixed.test resolves to 10.0.0.1, a private address",
        ),
    ],
)
async def test_sub_resources_to_private_and_metadata_addresses_are_refused_and_listed(
    runner: BrowserSpecRunner,
    guarded_site: Site,
    origin: str,
    connect: str,
    address: str,
    reason: str,
    message: str,
) -> None:
    spec = reach_with_xhr(guarded_site, origin)
    before = blocked_count(reason)
    capture = await runner.run(spec)
    assert fields_of(capture) == {"fetch": "failed", "xhr": "failed", "ws": "failed"}
    assert capture.result.http_status == 200
    blocked = {request.target: request for request in capture.result.blocked_requests}
    # Plain http is seen whole; the WebSocket goes through CONNECT, seen as host:port.
    expected = {f"{origin}/{path}" for path in ("img", "frame", "fetch", "xhr")} | {connect}
    assert set(blocked) == expected
    for request in blocked.values():
        assert (request.address, request.reason) == (address, reason)
        assert request.message == f"{message}; {ALLOW_SUFFIX}"
    assert blocked_count(reason) - before >= len(expected)


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://10.0.0.1:8080/", "10.0.0.1 is a private address"),
        ("https://10.0.0.1/", "10.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("https://169.254.169.254/", "169.254.169.254 is a cloud metadata address"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254 is a cloud metadata address"),
        ("http://intranet.test:8080/", "intranet.test resolves to 10.0.0.1, a private address"),
        (
            "http://metadata.test/latest/meta-data/",
            "metadata.test resolves to 169.254.169.254, a cloud metadata address",
        ),
    ],
)
async def test_a_first_navigation_to_a_private_or_metadata_address_fails_with_blocked_url(
    runner: BrowserSpecRunner, url: str, named: str
) -> None:
    assert await blocked_url_message(runner, url) == f"url: {named}; {ALLOW_SUFFIX}"


@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("http://2852039166/latest/meta-data/", "a cloud metadata address"),
        ("http://0xa9.0376.43518/latest/meta-data/", "a cloud metadata address"),
        ("http://[::ffff:169.254.169.254]/latest/meta-data/", "a cloud metadata address"),
        ("http://10.1:8080/", "a private address"),
        ("http://[::ffff:10.0.0.1]:8080/", "a private address"),
    ],
)
async def test_other_spellings_of_those_addresses_fail_with_blocked_url(
    runner: BrowserSpecRunner, url: str, what: str
) -> None:
    # Chromium sends the canonical form (169.254.169.254, [::ffff:a9fe:a9fe]) to the guard.
    message = await blocked_url_message(runner, url)
    assert message.endswith(f"{what}; {ALLOW_SUFFIX}")
    # Named as the address it is, not as a redirect nor as a name that resolves.
    assert message.startswith("url: ")
    assert "redirected" not in message
    assert "resolves" not in message


@pytest.mark.parametrize(
    ("target", "named"),
    [
        ("http://10.0.0.1:8080/secret", "10.0.0.1 is a private address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is a cloud metadata address",
        ),
        (
            "http://metadata.test/latest/meta-data/",
            "metadata.test resolves to 169.254.169.254, a cloud metadata address",
        ),
    ],
)
async def test_a_redirect_to_a_private_or_metadata_address_fails_with_blocked_url(
    runner: BrowserSpecRunner, guarded_site: Site, target: str, named: str
) -> None:
    message = await blocked_url_message(runner, guarded_site.url(f"/redirect?to={target}"))
    assert message == f"url: redirected to {target}: {named}; {ALLOW_SUFFIX}"


def through_a_service_worker(site: Site, origin: str) -> tasks_pb2.TaskSpec:
    """Loads the page whose service worker, and the page through it, fetch from `origin`."""
    return tasks_pb2.TaskSpec(
        url=site.url(f"/service-worker?to={origin}"),
        timeout_ms=20_000,
        steps=[
            tasks_pb2.Step(wait_for="#sw:not(:text('pending'))"),
            tasks_pb2.Step(wait_for="#through:not(:text('pending'))"),
        ],
        extract=tasks_pb2.ExtractOptions(fields={"sw": "#sw", "through": "#through"}),
    )


WORKER_PATHS = ("/sw-import.js", "/sw-install", "/sw-fetch", "/through")


async def test_a_service_worker_reaches_an_allowed_origin(
    runner: BrowserSpecRunner, guarded_site: Site, targets: Targets
) -> None:
    # The control: the worker runs and its fetches leave through the guard.
    capture = await runner.run(through_a_service_worker(guarded_site, targets.allowed.origin))
    fields = fields_of(capture)
    # importScripts reaches the listener but refuses its text/html answer.
    assert fields["sw"] == "import failed, install got ok, fetch got ok"
    assert fields["through"] == "got ok"
    assert set(WORKER_PATHS) <= set(targets.allowed.paths)
    assert list(capture.result.blocked_requests) == []


async def test_a_service_worker_cannot_reach_a_refused_loopback_listener(
    runner: BrowserSpecRunner, guarded_site: Site, targets: Targets
) -> None:
    origin = targets.ipv4.origin
    capture = await runner.run(through_a_service_worker(guarded_site, origin))
    fields = fields_of(capture)
    assert fields["sw"] == "import failed, install failed, fetch failed"
    assert fields["through"] == "failed"
    blocked = {request.target: request for request in capture.result.blocked_requests}
    assert set(blocked) == {origin + path for path in WORKER_PATHS}
    assert {request.reason for request in blocked.values()} == {"loopback"}
    assert targets.ipv4.connections == 0, targets.ipv4.paths
