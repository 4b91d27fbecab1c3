"""Fixtures for the agent's tests: settings, browser pool, fake storage, the queue around intakes.

Tasks go in as WorkItems on the farm's streams of a real nats-server; the intake's
AgentEvents are collected as they come out.
"""

import asyncio
import contextlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from prometheus_client import REGISTRY

from farm.queue.v1 import queue_pb2
from farm.sessions.v1 import sessions_pb2
from farm.storage.v1 import ingest_pb2_grpc
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.kv import (
    HOST_SLOTS_BUCKET,
    TASK_WAITS_BUCKET,
    TENANT_SLOTS_BUCKET,
)
from farm_agent.places import Places
from farm_agent.sessions.endpoints import SessionEndpoints
from farm_agent.sessions.manager import SessionManager
from farm_agent.sessions.session import OpenSession
from farm_agent.settings import AgentSettings
from farm_agent.work.intake import WorkIntake
from farm_agent.work.priorities import PRECEDENCE
from farm_agent.work.uploader import ArtifactUploader
from farm_core.breakers import BREAKERS_BUCKET
from farm_core.queue import (
    ANY_REGION,
    TASK_EVENT_SUBJECTS,
    TASK_STREAM,
    Priority,
    consumer_name,
    ensure_streams,
    task_subject,
)
from farm_core.settings import FarmSettings
from tests.conftest import NatsServer
from tests.helpers import (
    TEST_PUBLIC_KEY,
    TEST_SIGNER,
    StandInService,
    agent_credential,
    serving,
)
from tests.integration.agent.agent_events import Events as Events  # the tests take it from here
from tests.integration.agent.agent_processes import AgentProcesses
from tests.integration.agent.fakes import (
    UPLOAD_METHOD,
    FakeIngest,
    FakeSavedState,
    FakeStorage,
    FakeUploader,
    keeper_of,
)
from tests.pages import Site

QUEUED = tasks_pb2.TASK_STATUS_QUEUED
RUNNING = tasks_pb2.TASK_STATUS_RUNNING
SUCCEEDED = tasks_pb2.TASK_STATUS_SUCCEEDED
FAILED = tasks_pb2.TASK_STATUS_FAILED
CANCELLED = tasks_pb2.TASK_STATUS_CANCELLED
NORMAL = Priority.NORMAL

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()


def agent_settings(home: Path, **overrides: Any) -> AgentSettings:
    """Agent settings for a test: its own FARM_HOME, a fixed secret, small limits."""
    values: dict[str, Any] = {
        "FARM_HOME": home,
        "FARM_IDENTITY_PUBLIC_KEY": TEST_PUBLIC_KEY,
        "credential": agent_credential(str(overrides.get("id", "agent-test"))),
        "chromium_path": CHROMIUM,
        "min_browsers": 1,
        "max_browsers": 2,
        # A page that allocates without end dies at this heap size, not at Chromium's 4 GiB.
        "page_heap_mb": 128,
        # The test site is on 127.0.0.1, which the egress guard refuses by default.
        "allow": "127.0.0.0/8",
        # A free port for the session endpoints: the default (7150) is shared by every
        # agent these tests start, in each xdist worker, and by any farm on the machine.
        "session_port": 0,
        **overrides,
    }
    return AgentSettings(**values)


@contextlib.asynccontextmanager
async def running_pool(settings: AgentSettings) -> AsyncIterator[BrowserPool]:
    """A started browser pool, closed when the block ends; skips the test without Chromium."""
    if not HAVE_CHROMIUM:
        pytest.skip(f"no Chromium at {CHROMIUM}")
    pool = BrowserPool(settings)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(autouse=True)
async def no_lease_outlives_its_test() -> AsyncIterator[None]:
    """Fails a test that leaves a slot lease held, which would renew on after the test.

    Its renewals fail on a NATS connection closed by then and log into a later test.
    """
    yield
    renewing = sorted(
        task.get_name() for task in asyncio.all_tasks() if task.get_name().startswith("lease-")
    )
    assert not renewing, f"leases still renewed after the test: {renewing}"


@pytest.fixture(scope="module")
async def shared_pool(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BrowserPool]:
    """One browser pool for a module's tests (launching Chromium takes a second)."""
    # A short FARM_HOME keeps Chromium's socket path under the scratch directory.
    async with running_pool(agent_settings(tmp_path_factory.mktemp("h"), id="shared")) as pool:
        yield pool


class SettingsFactory:
    """Makes AgentSettings for one test, each with the test's FARM_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def __call__(self, **overrides: Any) -> AgentSettings:
        return agent_settings(self.home, **overrides)


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Agent settings with this test's FARM_HOME; keyword arguments override fields."""
    return SettingsFactory(tmp_path / "farm-home")


@pytest.fixture
async def agent_processes(nats_server: NatsServer, nc: Client) -> AsyncIterator[AgentProcesses]:
    """Real agent processes on the test's nats-server, stopped when the test ends.

    The streams are made first, as the scheduler makes them: an agent only waits for them.
    """
    await ensure_streams(nc.jetstream())
    processes = AgentProcesses(nats_server.url)
    try:
        yield processes
    finally:
        await processes.stop_all()


@pytest.fixture
async def fake_storage(tmp_path: Path, nats_server: NatsServer) -> AsyncIterator[FakeStorage]:
    """A storage stand-in on a free port that checks the `agent` scope like the real one.

    It reads the revoked credentials from NATS, as the real one: until then it refuses them.
    """
    # A partial fake: the generated base answers UNIMPLEMENTED for the RPCs it leaves out.
    ingest = FakeIngest()  # type: ignore[abstract]
    service = StandInService(
        "fake-storage",
        {UPLOAD_METHOD: "agent"},
        ingest,
        ingest_pb2_grpc.add_ArtifactIngestServiceServicer_to_server,
        "farm.storage.v1.ArtifactIngestService",
    )
    settings = FarmSettings(
        FARM_HOME=tmp_path, FARM_IDENTITY_PUBLIC_KEY=TEST_PUBLIC_KEY, NATS_URL=nats_server.url
    )
    async with serving(service, settings) as host:
        yield FakeStorage(host.address, ingest)


@pytest.fixture
async def js(nc: Client) -> AsyncIterator[JetStreamContext]:
    """JetStream with the farm's streams, and no agent consumers or tasks left from other tests."""
    context = nc.jetstream()
    await ensure_streams(context)
    await _reset_queue(context)
    yield context
    await _reset_queue(context)


async def _reset_queue(js: JetStreamContext) -> None:
    """No agent consumers, tasks, breakers, host or tenant slots or wait counts left over."""
    for priority in PRECEDENCE:
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(TASK_STREAM, consumer_name(ANY_REGION, priority))
    await js.purge_stream(TASK_STREAM)
    for bucket in (BREAKERS_BUCKET, HOST_SLOTS_BUCKET, TENANT_SLOTS_BUCKET, TASK_WAITS_BUCKET):
        with contextlib.suppress(NotFoundError):
            await js.delete_key_value(bucket)


@pytest.fixture
async def events(nc: Client) -> AsyncIterator[Events]:
    collected = Events()
    subscription = await nc.subscribe(TASK_EVENT_SUBJECTS, cb=collected.on_message)
    yield collected
    await subscription.unsubscribe()


@pytest.fixture
def uploader() -> FakeUploader:
    return FakeUploader()


@pytest.fixture
def saved(uploader: FakeUploader) -> FakeSavedState:
    return FakeSavedState(uploader)


StartIntake = Callable[..., Awaitable[WorkIntake]]
INTAKE_POLL_SECONDS = 0.25


@pytest.fixture
async def start_intake(
    nats_server: NatsServer,
    js: JetStreamContext,
    shared_pool: BrowserPool,
    make_settings: SettingsFactory,
    uploader: FakeUploader,
    saved: FakeSavedState,
) -> AsyncIterator[StartIntake]:
    """Starts intakes on the shared pool (id "agent-under-test" unless given); closes them.

    A task handed back or retried comes again at the intake's next look at its queues:
    they look every INTAKE_POLL_SECONDS unless told, not every 2 s.
    """
    started: list[WorkIntake] = []

    async def start(storage: ArtifactUploader | None = None, **overrides: Any) -> WorkIntake:
        settings = make_settings(
            **{
                "NATS_URL": nats_server.url,
                "id": "agent-under-test",
                "poll_seconds": INTAKE_POLL_SECONDS,
                **overrides,
            }
        )
        runner = BrowserSpecRunner(shared_pool, settings)
        intake = WorkIntake(settings, runner, storage or uploader, saved=saved)
        await intake.start()
        started.append(intake)
        return intake

    yield start
    for intake in started:
        await intake.close()


async def publish(
    js: JetStreamContext,
    spec: tasks_pb2.TaskSpec,
    priority: Priority = NORMAL,
    tenant: str = "acme",
    tenant_max_running: int = 0,
    claim_key: str = "",
) -> str:
    task_id = f"task-{uuid.uuid4().hex[:12]}"
    item = queue_pb2.WorkItem(
        task_id=task_id,
        tenant=tenant,
        spec=spec,
        tenant_max_running=tenant_max_running,
        upload_grant=grant_of(task_id),
        claim_key=claim_key,
    )
    await js.publish(
        task_subject("", priority), item.SerializeToString(), headers={"Nats-Msg-Id": task_id}
    )
    return task_id


def grant_of(task_id: str) -> str:
    """The stand-in for the scheduler's grant that `publish` puts in a task's WorkItem."""
    return f"grant-of-{task_id}"


def content_of(site: Site, path: str = "/page", timeout_ms: int = 20_000) -> tasks_pb2.TaskSpec:
    return tasks_pb2.TaskSpec(
        url=site.url(path), timeout_ms=timeout_ms, content=tasks_pb2.ContentOptions()
    )


async def queued_tasks(js: JetStreamContext) -> int:
    return (await js.stream_info(TASK_STREAM)).state.messages


async def is_zero(count: Awaitable[int]) -> bool:
    return await count == 0


async def start_two_agents(start_intake: StartIntake, **settings: Any) -> None:
    """Starts the intakes of "agent-a" and "agent-b", three tasks at once each, on one pool."""
    for name in ("agent-a", "agent-b"):
        await start_intake(id=name, concurrency=3, **settings)


def once(spec: tasks_pb2.TaskSpec) -> tasks_pb2.TaskSpec:
    """`spec` with a single attempt: a wait that counted as an attempt would fail the task."""
    spec.max_attempts = 1
    return spec


def waits(reason: str) -> float:
    """Deliveries handed back to wait for `reason` so far (in this process)."""
    return REGISTRY.get_sample_value("agent_task_waits_total", {"reason": reason}) or 0.0


@pytest.fixture
async def manager(
    shared_pool: BrowserPool,
    make_settings: Callable[..., AgentSettings],
    js: JetStreamContext,
    uploader: FakeUploader,
) -> AsyncIterator[SessionManager]:
    """A session manager on the shared pool, its events in NATS; its sessions closed after."""
    async with attached_manager(
        make_settings(session_spare_browsers=0), shared_pool, js, uploader
    ) as manager:
        yield manager


@pytest.fixture
async def endpoints(manager: SessionManager) -> AsyncIterator[SessionEndpoints]:
    """The manager's sessions' CDP endpoints on a free port, vouched for by the test signer."""
    endpoints = SessionEndpoints(manager, TEST_SIGNER, "127.0.0.1", 0)
    await endpoints.start()
    try:
        yield endpoints
    finally:
        await endpoints.close()


@contextlib.asynccontextmanager
async def attached_manager(
    settings: AgentSettings, pool: BrowserPool, js: JetStreamContext, uploader: FakeUploader
) -> AsyncIterator[SessionManager]:
    """A session manager with `settings` on `pool`, its events in NATS; drained after."""
    manager = SessionManager(settings, pool, Places(2), keeper_of(uploader))
    manager.attach(js, "127.0.0.1:1")
    try:
        yield manager
    finally:
        await manager.drain(0)


async def open_session(
    manager: SessionManager,
    viewport: tasks_pb2.Viewport | None = None,
    spec: sessions_pb2.SessionSpec | None = None,
) -> OpenSession:
    """Opens a session of tenant "acme" as the scheduler's order would.

    Its spec is `spec` if given (the farm's default screen unless it sets one), else
    one of `viewport` (320x240 unless told); both live for 10 minutes.
    """
    expire_time = Timestamp()
    expire_time.FromSeconds(int(time.time()) + 600)
    ordered = sessions_pb2.SessionSpec(idle_timeout_seconds=600, max_lifetime_seconds=600)
    if spec is not None:
        ordered.MergeFrom(spec)
    else:
        ordered.viewport.CopyFrom(viewport or tasks_pb2.Viewport(width=320, height=240))
    order = queue_pb2.OpenSessionOrder(
        session_id=f"ses_{secrets.token_hex(8)}",
        tenant="acme",
        spec=ordered,
        expire_time=expire_time,
    )
    await manager.open(order)
    session = manager.find(order.session_id)
    assert session is not None
    return session
