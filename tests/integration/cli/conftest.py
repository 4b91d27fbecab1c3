"""Fixtures for the launcher's tests: a FarmConfig on free ports, an Envoy before fake
services, and stand-in packages that play the farm's services.
"""

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from farm_cli.launcher.config import FarmConfig, find_project_root
from farm_cli.launcher.envoy import (
    Endpoint,
    EnvoySettings,
    envoy_ready,
    envoy_spec,
    write_envoy_config,
)
from farm_cli.launcher.ports import FarmPorts
from farm_cli.launcher.processes import ManagedProcess, free_ports, wait_until
from farm_cli.launcher.tls import TlsFiles, load_or_create_local_tls
from tests.conftest import S3Server
from tests.unit.cli.fake_services import FakeFarm, start_fake_farm

ROOT = find_project_root(Path(__file__).parent)


def running(pid: int) -> bool:
    """Whether a process `pid` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def pid_files(home: Path) -> dict[str, int]:
    """The PIDs the launcher recorded under `home`/run, by process name."""
    return {path.stem: int(path.read_text()) for path in (home / "run").glob("*.pid")}


def infra_only(home: Path) -> FarmConfig:
    """A farm of NATS, SeaweedFS and Envoy only, on free ports, with FARM_HOME `home`."""
    return FarmConfig(root=ROOT, home=home, ports=FarmPorts.free(), start_services=False)


def on_session_s3(config: FarmConfig, seaweedfs: S3Server) -> FarmConfig:
    """`config` using the session's SeaweedFS instead of one of its own.

    For farms whose tests look at no part of SeaweedFS: its start (~4 s) and stop
    (killed after its stop timeout) are then not theirs.
    """
    return replace(
        config,
        s3_endpoint=seaweedfs.endpoint,
        s3_credentials=seaweedfs.credentials,
        s3_bucket=seaweedfs.bucket,
    )


# Test data is thrown away: SIGKILL weed half a second after SIGTERM (its graceful stop
# never ends sooner than 15 s; the launcher's default gives 2 s), as tests/farms.py's.
QUICK_WEED_STOP_SECONDS = 0.5


@pytest.fixture
def infra_config(farm_home: Path) -> FarmConfig:
    """A farm of NATS, SeaweedFS and Envoy only, on free ports, in a fresh FARM_HOME.

    Its SeaweedFS is killed QUICK_WEED_STOP_SECONDS after SIGTERM: a test whose stored
    objects must outlive a stop sets the launcher's own timeout back.
    """
    return replace(infra_only(farm_home), seaweedfs_stop_timeout=QUICK_WEED_STOP_SECONDS)


@dataclass(frozen=True)
class EdgeUnderTest:
    """Envoy with the farm's configuration in front of fake services."""

    url: str
    grpc_target: str
    fakes: FakeFarm
    process: ManagedProcess
    # The listener's certificate and CA when it serves TLS.
    tls: TlsFiles | None = None


@contextmanager
def running_edge(
    state: Path,
    tls: TlsFiles | None = None,
    *,
    scheduler_port: int | None = None,
    mcp_port: int | None = None,
    edit: Callable[[str], str] | None = None,
) -> Iterator[EdgeUnderTest]:
    """Envoy rendered into `state` before fresh fakes; TLS-only with `tls`.

    `scheduler_port` routes the scheduler elsewhere than to its fake; `mcp_port` adds
    the MCP service's route, to that port; `edit` changes the rendered configuration's
    text before Envoy starts.
    """
    fakes = start_fake_farm()
    listen_port, admin_port = free_ports(2)
    settings = EnvoySettings(
        listen_port=listen_port,
        admin_port=admin_port,
        descriptor_path=ROOT / "envoy" / "farm.binpb",
        upstreams={
            "auth": [Endpoint("127.0.0.1", fakes.auth_port)],
            "auth_check": [Endpoint("127.0.0.1", fakes.check_port)],
            "storage": [Endpoint("127.0.0.1", fakes.storage_port)],
            "scheduler": [Endpoint("127.0.0.1", scheduler_port or fakes.scheduler_port)],
            **({"mcp": [Endpoint("127.0.0.1", mcp_port)]} if mcp_port else {}),
        },
        tls_cert_path=tls.cert if tls else None,
        tls_key_path=tls.key if tls else None,
    )
    config = write_envoy_config(ROOT / "envoy" / "envoy.yaml.j2", settings, state / "envoy.yaml")
    if edit is not None:
        config.write_text(edit(config.read_text()))
    process = ManagedProcess(envoy_spec(config), state, state)
    process.start()
    try:
        wait_until(lambda: envoy_ready(settings), timeout=30, what="envoy", process=process)
        target = f"127.0.0.1:{settings.listen_port}"
        scheme = "https" if tls else "http"
        yield EdgeUnderTest(f"{scheme}://{target}", target, fakes, process, tls)
    finally:
        process.stop(timeout=5)
        fakes.stop()


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeUnderTest]:
    """The rendered Envoy before fake auth (with ext_authz), storage and scheduler."""
    with running_edge(tmp_path_factory.mktemp("edge")) as running:
        yield running


@pytest.fixture(scope="module")
def tls_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeUnderTest]:
    """As `edge`, its listener serving TLS only with a certificate of a fresh local CA."""
    state = tmp_path_factory.mktemp("tls-edge")
    with running_edge(state, load_or_create_local_tls(state / "tls")) as running:
        yield running


STAND_IN = """
import json, os, signal, threading, time
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2_grpc

service = __package__.removeprefix("farm_")
name = os.environ.get("FARM_AGENT_ID", service)
record = Path(os.environ["STAND_IN_RECORD_DIR"])
(record / f"{name}.env.json").write_text(json.dumps(dict(os.environ)))
with (record / f"{name}.starts").open("a") as starts:
    starts.write(f"{os.getpid()}\\n")
stopping = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stopping.set())
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
server.add_insecure_port("127.0.0.1:" + os.environ[f"FARM_{service.upper()}_PORT"])
server.start()
if service == "auth":
    # The edge check's port answers /healthz, as Envoy's auth_check cluster asks.
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Healthy(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

    check = ThreadingHTTPServer(("127.0.0.1", int(os.environ["FARM_AUTH_CHECK_PORT"])), Healthy)
    threading.Thread(target=check.serve_forever, daemon=True).start()
stopping.wait()
(record / f"{name}.stopped").write_text(str(time.monotonic_ns()))
server.stop(None)
"""


@pytest.fixture
def stand_ins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Packages farm_auth, farm_storage, farm_scheduler, farm_agent ahead of the real ones.

    Each serves gRPC health on the port the launcher gives it (auth also an HTTP
    /healthz on its check port), writes down the
    environment it was started with (<name>.env.json) and its PID at each start
    (<name>.starts), and on SIGTERM notes the time (<name>.stopped) and exits 0.
    Returns the folder they write to.
    """
    packages = tmp_path / "stand-ins"
    for service in ("auth", "storage", "scheduler", "agent"):
        package = packages / f"farm_{service}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "__main__.py").write_text(STAND_IN)
    record = tmp_path / "record"
    record.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(packages))
    monkeypatch.setenv("STAND_IN_RECORD_DIR", str(record))
    monkeypatch.delenv("FARM_ADMIN_KEY", raising=False)
    return record
