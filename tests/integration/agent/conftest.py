"""Fixtures for the agent's tests: a local web site, agent settings and a browser pool."""

import hashlib
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import grpc
import pytest

from farm.storage.v1 import artifacts_pb2, ingest_pb2, ingest_pb2_grpc
from farm_agent.pool import BrowserPool
from farm_agent.settings import AgentSettings
from farm_cli.launcher.processes import free_port
from farm_core.identity import Identity, current_identity
from farm_core.server import ServiceHost
from farm_core.settings import FarmSettings

SECRET = "agent-test-secret-" + "s" * 32
CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()

PAGES: dict[str, str] = {
    "/page": """<!doctype html><html><head><title>Test page</title></head><body>
        <h1>Hello, farm</h1>
        <p class="intro">Browsers as a service.</p>
        <a href="/one" data-id="1">One</a> <a href="/two" data-id="2">Two</a>
        <ul><li>apple</li><li>pear</li><li>plum</li></ul>
        </body></html>""",
    "/tall": """<!doctype html><html><head><title>Tall</title></head>
        <body style="margin:0"><div style="height:3000px;background:linear-gradient(red,blue)">
        </div><p id="end">The end</p></body></html>""",
    "/box": """<!doctype html><html><head><title>Box</title></head><body style="margin:0">
        <div style="height:100px"></div>
        <div id="box" style="width:300px;height:200px;margin-left:50px;background:#c33"></div>
        </body></html>""",
    "/form": """<!doctype html><html><head><title>Form</title></head><body>
        <input id="q" value=""><button id="go"
          onclick="document.getElementById('out').textContent = 'You asked: ' +
                   document.getElementById('q').value">Go</button>
        <p id="out">nothing yet</p></body></html>""",
}


@dataclass
class Site:
    """A local web site the tests' browsers visit; `/gate/<name>` answers when released."""

    base_url: str
    gates: dict[str, threading.Event] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base_url + path

    def gate(self, name: str) -> threading.Event:
        with self.lock:
            return self.gates.setdefault(name, threading.Event())

    def release(self, name: str) -> None:
        self.gate(name).set()

    def release_all(self) -> None:
        with self.lock:
            for gate in self.gates.values():
                gate.set()


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path.startswith("/gate/"):
                # Bounded: a gate nobody opens still answers after 30 s.
                site.gate(url.path.removeprefix("/gate/")).wait(timeout=30)
                body = "<html><head><title>Gate</title></head><body>opened</body></html>"
            elif url.path == "/slow":
                time.sleep(int(parse_qs(url.query).get("ms", ["1000"])[0]) / 1000)
                body = "<html><head><title>Slow</title></head><body>late</body></html>"
            elif url.path in PAGES:
                body = PAGES[url.path]
            else:
                self.send_error(404)
                return
            data = body.encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except ConnectionError:
                pass  # The browser gave up on a slow page (a timeout or cancel test).

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    """The test pages on 127.0.0.1 at a free port, for the whole session."""
    site = Site(base_url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    server.daemon_threads = True
    site.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="test-site", daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.release_all()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def agent_settings(home: Path, **overrides: object) -> AgentSettings:
    """Agent settings for a test: its own FARM_HOME, a fixed secret, small limits."""
    values: dict[str, object] = {
        "FARM_HOME": home,
        "FARM_IDENTITY_SECRET": SECRET,
        "chromium_path": CHROMIUM,
        "min_browsers": 1,
        "max_browsers": 2,
        **overrides,
    }
    return AgentSettings(**values)


@pytest.fixture(scope="module")
async def shared_pool(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BrowserPool]:
    """One browser pool for a module's tests (launching Chromium takes a second)."""
    if not HAVE_CHROMIUM:
        pytest.skip(f"no Chromium at {CHROMIUM}")
    # A short FARM_HOME keeps Chromium's socket path under the scratch directory.
    pool = BrowserPool(agent_settings(tmp_path_factory.mktemp("h"), id="shared"))
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


class SettingsFactory:
    """Makes AgentSettings for one test, each with the test's FARM_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def __call__(self, **overrides: object) -> AgentSettings:
        return agent_settings(self.home, **overrides)


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Agent settings with this test's FARM_HOME; keyword arguments override fields."""
    return SettingsFactory(tmp_path / "farm-home")


UPLOAD_METHOD = "/farm.storage.v1.ArtifactIngestService/UploadArtifact"


@dataclass(frozen=True)
class StoredUpload:
    """One upload as the fake storage service received it."""

    identity: Identity
    header: ingest_pb2.UploadHeader
    chunks: list[bytes]


class FakeIngest(ingest_pb2_grpc.ArtifactIngestServiceServicer):
    """ArtifactIngestService that keeps uploads in memory; can answer UNAVAILABLE first."""

    def __init__(self) -> None:
        self.stored: list[StoredUpload] = []
        self.unavailable_left = 0

    async def UploadArtifact(
        self,
        request_iterator: AsyncIterator[ingest_pb2.UploadArtifactRequest],
        context: grpc.aio.ServicerContext,
    ) -> ingest_pb2.UploadArtifactResponse:
        if self.unavailable_left:
            self.unavailable_left -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "storage warming up")
        requests = [request async for request in request_iterator]
        header, chunks = requests[0].header, [request.chunk for request in requests[1:]]
        self.stored.append(StoredUpload(current_identity(), header, chunks))
        data = b"".join(chunks)
        return ingest_pb2.UploadArtifactResponse(
            artifact=artifacts_pb2.Artifact(
                id=f"artifact-{len(self.stored)}",
                task_id=header.task_id,
                kind=header.kind,
                content_type=header.content_type,
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                tenant=header.tenant,
                name=header.name,
            )
        )


class FakeStorageService:
    """A farm service serving FakeIngest, with the real identity and scope checks."""

    name = "fake-storage"
    method_scopes: Mapping[str, str] = {UPLOAD_METHOD: "internal"}

    def __init__(self) -> None:
        self.ingest = FakeIngest()

    async def start(self) -> None:
        pass

    def register(self, server: grpc.aio.Server) -> Sequence[str]:
        ingest_pb2_grpc.add_ArtifactIngestServiceServicer_to_server(self.ingest, server)
        return ["farm.storage.v1.ArtifactIngestService"]

    async def drain(self, grace_seconds: float) -> None:
        pass

    async def close(self) -> None:
        pass


@dataclass(frozen=True)
class FakeStorage:
    """The running fake storage service: where it listens and what it received."""

    address: str
    ingest: FakeIngest


@pytest.fixture
async def fake_storage(tmp_path: Path) -> AsyncIterator[FakeStorage]:
    """A storage stand-in on a free port that checks the `internal` scope like the real one."""
    service = FakeStorageService()
    host = ServiceHost(
        service, FarmSettings(FARM_HOME=tmp_path, FARM_IDENTITY_SECRET=SECRET), free_port()
    )
    await host.start()
    try:
        yield FakeStorage(host.address, service.ingest)
    finally:
        await host.stop(1)
