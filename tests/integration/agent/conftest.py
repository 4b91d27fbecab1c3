"""Fixtures for the agent's tests: agent settings, a browser pool and a fake storage service."""

import hashlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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
