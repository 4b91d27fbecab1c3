"""The whole farm for end-to-end tests: real processes behind a real Envoy.

One farm serves the end-to-end tests (NATS, SeaweedFS, auth, storage, scheduler, two
agents, Envoy) on free ports, started the way `farm up` starts it; the test pages
come from tests/pages.py on 127.0.0.1, which the agents are allowed to reach. It is
scoped to this package, so a pytest worker stops it once its last end-to-end module
has run (tests/conftest.py hands those out first), not at the session's end.
"""

import asyncio
import secrets
import shutil
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright
from prometheus_client.parser import text_string_to_metric_families

from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from farm_agent.browser.chromium import CHROMIUM_FLAGS
from farm_cli.launcher.config import find_project_root
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.mcp_client import SCOPES, Connect, http_connection, stdio_connection
from tests.e2e.sessions_api import Sessions
from tests.farms import whole_farm_config
from tests.helpers import eventually
from tests.pages import Site

ROOT = find_project_root(Path(__file__).parent)
FINAL_STATES = {"TASK_STATUS_SUCCEEDED", "TASK_STATUS_FAILED", "TASK_STATUS_CANCELLED"}
# Two agents (see the farm fixture) with the default concurrency of two each.
AGENT_SLOTS = 4
# The shortest idle timeout and lifetime the farm fixture's sessions may ask for.
SESSION_MIN_SECONDS = 2
# How often the farm fixture's agents read their sessions' idle and lifetime clocks.
SESSION_CHECK_SECONDS = 0.25
# How long a session's dialog waits for an answer on the farm fixture's agents: room
# for the tests that answer one a command later, even on a busy machine.
SESSION_DIALOG_SECONDS = 4
# Refused sign-ins one browser address may make at the farm fixture's console (its
# default: 10) before it waits: test_console_signin_limit's guesser costs auth's
# count of the console's own address only this many and one, whatever else runs.
CONSOLE_SIGNIN_LIMIT = 3
# What Chromium and htmx log, as errors, of an answer that is not 2xx.
REFUSALS_LOGGED = ("Failed to load resource", "Response Status Error Code")


@pytest.fixture(scope="package")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    """The farm, started once for the end-to-end tests and stopped by PID after them."""
    # With Prometheus where `make observe-deps` installed it (make test does).
    config = whole_farm_config(tmp_path_factory.mktemp("farm"))
    config = replace(
        config,
        observe=shutil.which("prometheus") is not None,
        # Sessions may ask for idle timeouts and lifetimes of a few seconds (farm default:
        # 10 s at least), so that the tests of those clocks do not wait 10 s each.
        service_env={
            **config.service_env,
            "FARM_SCHEDULER_SESSION_MIN_SECONDS": str(SESSION_MIN_SECONDS),
            # The agents read those clocks every quarter second, not every second: a
            # session closes within SESSION_CHECK_SECONDS of its due time.
            "FARM_AGENT_SESSION_CHECK_SECONDS": str(SESSION_CHECK_SECONDS),
            # The console's live parts (a task's status) show a change within half a
            # second, not two (its default), for test_console's waits.
            "FARM_CONSOLE_REFRESH_SECONDS": "0.5",
            "FARM_CONSOLE_FAILED_SIGNIN_LIMIT": str(CONSOLE_SIGNIN_LIMIT),
            # test_mcp's wrong selectors are answered after 2 s, not the default 10.
            "FARM_MCP_ACTION_TIMEOUT_SECONDS": "2",
            # test_session_dialogs' forgotten dialog is dismissed after 4 s, not 60.
            "FARM_AGENT_SESSION_DIALOG_SECONDS": str(SESSION_DIALOG_SECONDS),
            # test_webhooks' twice refused callback is tried again after 0.2 s and 0.4 s
            # (each at the next look for due callbacks), not 1 s and 2 s.
            "FARM_SCHEDULER_CALLBACK_RETRY_FIRST_SECONDS": "0.2",
            # A session being opened waits 2 s, not 5, for a place that tasks hold on
            # each agent: test_session_listing_and_placement's create on a fully busy
            # farm is refused after 4 s, not 10.
            "FARM_AGENT_SESSION_PLACE_WAIT_SECONDS": "2",
        },
    )
    with LocalFarm(config) as running:
        yield running


def fresh(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` run by an agent even if the tenant ran it lately: cacheTtlSeconds 0 unless given.

    The e2e tests share one farm and tenant, and many run the same small page; they
    test what agents do, so only the result cache's own tests let it answer.
    """
    return {"cacheTtlSeconds": 0, **spec}


@dataclass(frozen=True)
class Client:
    """HTTP/JSON access to the farm through Envoy with one API key."""

    http: httpx.Client
    key: str

    def run(self, spec: dict[str, Any]) -> dict[str, Any]:
        """RunTask of fresh(spec): the finished task."""
        response = self.http.post("/v1/tasks:run", json=fresh(spec))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def create(self, spec: dict[str, Any]) -> dict[str, Any]:
        """CreateTask of fresh(spec): the queued task."""
        response = self.http.post("/v1/tasks", json=fresh(spec))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def get(self, task_id: str) -> dict[str, Any]:
        """GetTask."""
        response = self.http.get(f"/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait(self, task_id: str, *, within: float = 60.0) -> dict[str, Any]:
        """Polls GetTask until the task is final; fails after `within` seconds."""
        return self.wait_for_status(task_id, *FINAL_STATES, within=within)

    def wait_for_status(self, task_id: str, *statuses: str, within: float = 30.0) -> dict[str, Any]:
        """Polls GetTask until the task is in one of `statuses`; the task then."""

        def arrived() -> dict[str, Any] | None:
            task = self.get(task_id)
            return task if task["status"] in statuses else None

        return eventually(
            arrived,
            within=within,
            interval=0.1,
            message=lambda: self._still(task_id, statuses),
        )

    def _still(self, task_id: str, statuses: tuple[str, ...]) -> str:
        """Where a task that did not arrive stands: whether it waited QUEUED, or ran, and where."""
        task = self.get(task_id)
        return (
            f"task {task_id} still {task['status']}, not {statuses}: created "
            f"{task.get('createTime')}, started {task.get('startTime', 'never')} on agent "
            f"{task.get('agentId', 'none')!r}, attempt {task.get('attempts', 0)}, "
            f"status message {task.get('statusMessage', '')!r}"
        )

    def artifact_bytes(self, artifact_id: str) -> httpx.Response:
        """GetArtifactContent over HTTP: the raw bytes with their content type."""
        response = self.http.get(f"/v1/artifacts/{artifact_id}:content")
        assert response.status_code == 200, response.text
        return response


def http_client(farm: LocalFarm, key: str | None) -> httpx.Client:
    """An HTTP client for the farm's Envoy, with `key` as bearer if given."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=farm.envoy_url, headers=headers, timeout=120)


@pytest.fixture(scope="package")
def admin(farm: LocalFarm) -> Iterator[Client]:
    """The bootstrap admin key's client (tenant "default", every scope)."""
    with http_client(farm, farm.admin_key) as http:
        yield Client(http, farm.admin_key)


@pytest.fixture
def busy_agents(farm: LocalFarm, admin: Client, site: Site) -> Iterator[str]:
    """Holds every agent slot with a task its gate page keeps open; yields the gate's name.

    First waits until every place is free (an earlier test's task or session may still
    hold one). Tasks created meanwhile wait in the queue until the test opens the gate
    (`site.release`); afterwards the gate is opened and the holding tasks are awaited.
    """
    eventually(
        lambda: agent_metric(farm, "agent_places", state="free") == AGENT_SLOTS,
        within=90,
        interval=0.5,
        message=lambda: f"free places {agent_metric(farm, 'agent_places', state='free')}",
    )
    gate = f"busy-{unique_label()['test']}"
    holders = [
        admin.create({"url": site.url(f"/gate/{gate}"), "content": {}, "timeoutMs": 60000})["id"]
        for _ in range(AGENT_SLOTS)
    ]
    for task_id in holders:
        admin.wait_for_status(task_id, "TASK_STATUS_RUNNING")
    yield gate
    site.release(gate)
    for task_id in holders:
        admin.wait(task_id)


@pytest.fixture(scope="package")
def grpc_target(farm: LocalFarm) -> str:
    """host:port of Envoy for gRPC clients."""
    return farm.envoy_url.removeprefix("http://")


@pytest.fixture(scope="package")
def channel(grpc_target: str) -> Iterator[grpc.Channel]:
    """A gRPC channel to Envoy."""
    with grpc.insecure_channel(grpc_target) as open_channel:
        yield open_channel


class KeyFactory:
    """Makes API keys through the AuthService with the admin key."""

    def __init__(self, farm: LocalFarm, channel: grpc.Channel) -> None:
        self._stub = auth_pb2_grpc.AuthServiceStub(channel)
        self._metadata = (("authorization", f"Bearer {farm.admin_key}"),)

    def __call__(
        self, *scopes: str, tenant: str = "", ttl_seconds: int = 0
    ) -> auth_pb2.CreateApiKeyResponse:
        request = auth_pb2.CreateApiKeyRequest(
            name=f"test-{secrets.token_hex(3)}",
            scopes=list(scopes),
            tenant=tenant,
            ttl_seconds=ttl_seconds,
        )
        response: auth_pb2.CreateApiKeyResponse = self._stub.CreateApiKey(
            request, metadata=self._metadata, timeout=10
        )
        return response


@pytest.fixture(scope="package")
def make_key(farm: LocalFarm, channel: grpc.Channel) -> KeyFactory:
    """Creates API keys: make_key("tasks.read", tenant="other")."""
    return KeyFactory(farm, channel)


def new_tenant(prefix: str) -> str:
    """A tenant name no other test uses."""
    return f"{prefix}-{secrets.token_hex(4)}"


def refusal(http: httpx.Client) -> httpx.Response | None:
    """ListTasks with `http`'s key: the answer if it was refused, None if it was served."""
    response = http.get("/v1/tasks")
    return None if response.status_code == 200 else response


def agent_metric(farm: LocalFarm, name: str, **labels: str) -> float:
    """Sample `name` with `labels` summed over the farm's agents, read from their /metrics."""
    total = 0.0
    for index in range(1, farm.config.agents + 1):
        port = farm.config.ports.agent_metrics(index)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            total += sum(
                sample.value
                for sample in family.samples
                if sample.name == name and labels.items() <= sample.labels.items()
            )
    return total


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def unique_label() -> dict[str, str]:
    """A label no other test uses, to find this test's tasks."""
    return {"test": secrets.token_hex(6)}


BOOTSTRAP_TENANT = "default"
"""The tenant of the farm's first admin key, whose admins run the shared fleet."""


@pytest.fixture(scope="module")
def operator(make_key: KeyFactory) -> auth_pb2.CreateApiKeyResponse:
    """A fresh admin key of the bootstrap tenant, so no other test spends its rate."""
    return make_key("admin")


@pytest.fixture(scope="module")
def sessions(admin: Client) -> Sessions:
    """SessionService over HTTP/JSON with the admin key."""
    return Sessions(admin.http)


@pytest.fixture
async def playwright() -> AsyncIterator[Playwright]:
    """A Playwright driver of the test's own, to attach to sessions or view their screens."""
    async with async_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for a console test module's tests."""
    async with async_playwright() as driver:
        launched = await driver.chromium.launch(
            executable_path=Path("/usr/bin/chromium"), args=CHROMIUM_FLAGS, headless=True
        )
        yield launched
        await launched.close()


@pytest.fixture
async def tab(browser: Browser) -> AsyncIterator[Page]:
    """A fresh tab with no cookies; an error on its console (a CSP violation) fails the test."""
    context: BrowserContext = await browser.new_context(viewport={"width": 1100, "height": 720})
    page = await context.new_page()
    errors: list[str] = []
    # A refused sign-in answers 401, which Chromium logs too, and htmx logs a refused
    # refresh of a live part (which the page shows); the tests check statuses.
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and not message.text.startswith(REFUSALS_LOGGED)
            else None
        ),
    )
    yield page
    await context.close()
    assert errors == [], errors


@pytest.fixture(scope="module")
def console_key(make_key: KeyFactory) -> str:
    """An operator's key: the fleet, tasks, artifacts and dead letters."""
    return make_key("admin", "tasks.write", "tasks.read", "artifacts.read", "sessions").secret


@pytest.fixture
def thread_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in a thread of its own, beside a test's blocking client."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


@pytest.fixture
def tenant_key(make_key: KeyFactory) -> str:
    """A key of a tenant of this test's own, with what the MCP tools need."""
    return make_key(*SCOPES, tenant=new_tenant("mcp")).secret


@pytest.fixture(params=["stdio", "http"])
def connect(request: pytest.FixtureRequest, farm: LocalFarm) -> Connect:
    """Opens one MCP connection with a key: `farm mcp` over stdio, or /mcp through Envoy."""
    if request.param == "stdio":
        return lambda key: stdio_connection(farm, key)
    return lambda key: http_connection(farm, key)


@pytest.fixture
def over_http(farm: LocalFarm) -> Connect:
    """Opens one MCP connection with a key at /mcp through Envoy."""
    return lambda key: http_connection(farm, key)
