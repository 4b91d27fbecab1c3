"""Fixtures shared by every level of tests: free ports and the real infrastructure.

Each fixture starts a real process (nats-server, SeaweedFS) on free ports on
127.0.0.1 with its state in a temporary directory, and stops it by PID.
"""

import contextlib
import os
import secrets
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once
from xdist.remote import Producer
from xdist.scheduler import Scheduling

from farm_cli.launcher import infra
from farm_cli.launcher.processes import ManagedProcess, free_ports, wait_until
from farm_core.free_ports import PORT_RANGE_ENV, free_port
from farm_core.runtime import loop_factory
from farm_core.settings import FarmSettings
from tests.farm_scopes import FarmScopeScheduling, path_scope
from tests.helpers import assert_eventually
from tests.pages import Site, serve_site
from tests.postgres import FARM_DATABASES, POSTGRES_URL, postgres_reachable
from tests.postgres_pool import DATABASE_POOL

# Each pytest worker takes ports from its own range, below the kernel's ephemeral ports
# (which every outgoing connection takes from too): two workers' farms never collide.
PORTS_PER_WORKER = 5000
# Above 10080, a port Chromium refuses to load pages from (ERR_UNSAFE_PORT). Two test
# runs at once on one machine each set their own (FARM_TEST_FIRST_PORT), else their
# workers would draw from the same ranges.
FIRST_TEST_PORT = int(os.environ.get("FARM_TEST_FIRST_PORT", "10100"))


def pytest_configure(config: pytest.Config) -> None:
    """Sets this process's FARM_FREE_PORT_RANGE from its xdist worker number."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker.removeprefix("gw")) if worker.startswith("gw") else 0
    low = FIRST_TEST_PORT + index * PORTS_PER_WORKER
    os.environ[PORT_RANGE_ENV] = f"{low}-{low + PORTS_PER_WORKER - 1}"


E2E_PACKAGE = Path(__file__).parent / "e2e"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Orders the modules: end-to-end ones first; within each part those marked slow first,
    then by their number of tests, most first. The modules of one farm (a subpackage of
    tests/e2e, tests/farm_scopes.py) count as one and stay together.

    pytest-xdist (`--dist loadfile --no-loadscope-reorder`, as make test runs it) hands
    the modules out in this order: a module with a farm of its own and a few long tests
    starts early, and the run ends on short modules instead of one worker waiting for
    the other's last farm. Once a worker has run its last end-to-end module, the shared
    end-to-end farm (package-scoped, tests/e2e/conftest.py) stops instead of idling
    beside the rest. A module's tests keep their order.
    """
    if not items:
        return
    root = items[0].config.rootpath
    scopes = {item.path: path_scope(item.path, root) for item in items}
    counts = Counter(scopes[item.path] for item in items)
    # By folder, not by the e2e mark: the shared farm is scoped to the tests/e2e package.
    e2e = {scopes[item.path] for item in items if E2E_PACKAGE in item.path.parents}
    slow = {scopes[item.path] for item in items if item.get_closest_marker("slow")}
    items.sort(
        key=lambda item: (
            scopes[item.path] not in e2e,
            scopes[item.path] not in slow,
            -counts[scopes[item.path]],
            str(scopes[item.path]),
        )
    )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> Scheduling | None:
    """`--dist loadfile` keeps the modules of one farm on one worker (tests/farm_scopes.py)."""
    if config.getvalue("dist") != "loadfile":
        return None
    return FarmScopeScheduling(config, log)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, object]:
    """Async tests run on the loop the services run on (FARM_EVENT_LOOP, uvloop by default)."""
    kind = FarmSettings().event_loop
    return {kind.value: loop_factory(kind)}


@pytest.fixture
def port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_port()


def stopped(pid: int) -> bool:
    """Whether every thread of process `pid` is stopped (state T in /proc)."""
    states = []
    for thread in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            states.append((thread / "stat").read_text().rpartition(")")[2].split()[0])
    return bool(states) and all(state == "T" for state in states)


@dataclass(frozen=True)
class NatsServer:
    """A running nats-server with JetStream."""

    url: str
    process: ManagedProcess
    # Its monitoring endpoint (/connz, /varz, ...), http://host:port.
    monitor_url: str = ""

    @contextlib.asynccontextmanager
    async def stalled(self) -> AsyncIterator[None]:
        """The server stopped (SIGSTOP) for the block, continued (SIGCONT) after it.

        It keeps its connections and answers nothing, as a stalled server (a full disk)
        does. kill() returns before the server has stopped: until the thread the signal
        woke gets a CPU and stops the others, another thread, woken by a request, may
        still answer it (a few in a hundred on a loaded machine). The block starts only
        once every thread is stopped.
        """
        self.process.send_signal(signal.SIGSTOP)
        try:
            await assert_eventually(
                lambda: stopped(self.process.pid), message="nats-server did not stop"
            )
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)


@contextlib.contextmanager
def running_nats(state: Path) -> Iterator[NatsServer]:
    """A nats-server with JetStream on free ports, its state under `state`, stopped after."""
    ports = infra.NatsPorts(*free_ports(2))
    process = ManagedProcess(infra.nats_spec(ports, state / "data"), state, state)
    process.start()
    try:
        wait_until(lambda: infra.nats_ready(ports), timeout=30, what="nats-server", process=process)
        yield NatsServer(
            url=f"nats://127.0.0.1:{ports.client}",
            process=process,
            monitor_url=f"http://127.0.0.1:{ports.monitor}",
        )
    finally:
        process.stop(timeout=5)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server with JetStream for the whole session."""
    with running_nats(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture
def fresh_nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server of the test's own, without the streams earlier tests made."""
    with running_nats(tmp_path / "nats") as server:
        yield server


@dataclass(frozen=True)
class S3Server:
    """A running SeaweedFS S3 gateway with a bucket ready."""

    endpoint: str
    credentials: infra.S3Credentials
    bucket: str
    process: ManagedProcess


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS (master, volume, filer, S3) for the whole session."""
    state = tmp_path_factory.mktemp("seaweedfs")
    ports = infra.SeaweedPorts(*free_ports(8))
    credentials = infra.S3Credentials("farm-test", secrets.token_hex(16))
    process = ManagedProcess(infra.seaweedfs_spec(ports, state, credentials), state, state)
    endpoint = f"http://127.0.0.1:{ports.s3}"
    process.start()
    try:
        wait_until(
            lambda: infra.s3_ready(endpoint, credentials, "farm-test"),
            timeout=90,
            what="SeaweedFS S3",
            process=process,
            interval=0.3,
        )
        yield S3Server(endpoint, credentials, "farm-test", process)
    finally:
        # Test data is thrown away: no need to wait out weed's slow graceful stop (its
        # filer waits 15 s for its S3 gateway).
        process.stop(timeout=0.5)
        infra.remove_seaweedfs_sockets(ports)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database (dropped afterwards), as a plain postgresql:// URL.

    Uses DATABASE_URL's server when set, else the machine's 127.0.0.1:5432; skips
    when neither answers. The process's pool made it ahead and drops it behind the test.
    """
    if not postgres_reachable():
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}")
    url = await DATABASE_POOL.take()
    try:
        yield url
    finally:
        DATABASE_POOL.release(url)


@pytest.fixture(scope="session", autouse=True)
def orphan_guard() -> Iterator[None]:
    """A guard that kills what this process started if it is killed (tests/orphan_guard.py).

    First of the session's fixtures, so stopped after every other one's teardown.
    """
    guard = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("orphan_guard.py")), str(os.getpid())],
        stdout=subprocess.DEVNULL,
        # Out of the terminal's process group: a Ctrl-C is pytest's to handle.
        start_new_session=True,
    )
    try:
        yield
    finally:
        guard.terminate()
        guard.wait()


@pytest.fixture(scope="session", autouse=True)
def farm_databases() -> Iterator[None]:
    """Drops the PostgreSQL databases this run's farms and tests used, and any made ahead."""
    yield
    try:
        FARM_DATABASES.drop_all()
    finally:
        DATABASE_POOL.close()


@pytest.fixture
def farm_home(tmp_path: Path) -> Path:
    """An empty FARM_HOME for one test."""
    home = tmp_path / "farm-home"
    home.mkdir()
    return home


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    """The test pages (tests/pages.py) on 127.0.0.1 at a free port, for the whole session."""
    with serve_site() as served:
        yield served


@pytest.fixture
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """The process's spans are recorded (the global tracer provider) while the test runs.

    Afterwards the API is back to its no-op tracer, as in a service without an endpoint.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # The API lets a process set its provider once; tests set and clear it each time.
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        provider.shutdown()
        trace._TRACER_PROVIDER_SET_ONCE = Once()
        trace._TRACER_PROVIDER = None
