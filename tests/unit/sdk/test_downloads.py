"""download_to(): an artifact saved as a file, whole, or not at all."""

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.api import httpbody_pb2  # type: ignore[import-untyped]

import browserfarm
from farm.storage.v1 import artifacts_pb2_grpc
from farm_core.free_ports import free_port

STORED = {"art_1": b"\x89PNG the whole image"}


class StoredArtifacts(artifacts_pb2_grpc.ArtifactServiceServicer):
    """GetArtifactContent of the artifacts in STORED; NOT_FOUND for any other id."""

    def GetArtifactContent(self, request: Any, context: grpc.ServicerContext) -> Any:
        data = STORED.get(request.id)
        if data is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"artifact {request.id!r} not found")
        return httpbody_pb2.HttpBody(content_type="image/png", data=data)


@pytest.fixture(scope="module")
def artifact_farm() -> Iterator[str]:
    """The URL of a farm that serves STORED's artifacts, for one module."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    # A partial fake: the generated base answers UNIMPLEMENTED for the RPCs it leaves out.
    artifacts_pb2_grpc.add_ArtifactServiceServicer_to_server(StoredArtifacts(), server)  # type: ignore[abstract]
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop(grace=None)


def test_an_artifact_is_saved_whole_as_the_file_named(artifact_farm: str, tmp_path: Path) -> None:
    target = tmp_path / "page.png"
    with browserfarm.Client(artifact_farm, "bf_key") as farm:
        saved = farm.download_to("art_1", target)
        again = farm.download_to("art_1", str(target))
    assert saved == again == target
    assert target.read_bytes() == STORED["art_1"]
    assert sorted(tmp_path.iterdir()) == [target]


def test_a_missing_artifact_leaves_the_file_there_as_it_was(
    artifact_farm: str, tmp_path: Path
) -> None:
    target = tmp_path / "page.png"
    target.write_bytes(b"kept")

    async def save() -> None:
        async with browserfarm.AsyncClient(artifact_farm, "bf_key") as farm:
            await farm.download_to("art_missing", target)

    with pytest.raises(browserfarm.NotFound, match="art_missing"):
        asyncio.run(save())
    assert target.read_bytes() == b"kept"
    assert sorted(tmp_path.iterdir()) == [target]


# A disk that fills after 10 bytes: a process whose files may not grow beyond that.
WRITE_ON_A_FULL_DISK = """
import resource, signal, sys
from pathlib import Path
from browserfarm.files import write_whole
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (10, 10))
try:
    write_whole(Path(sys.argv[1]), b"x" * 100)
except OSError as error:
    print(type(error).__name__)
"""


def test_a_write_that_fails_midway_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "page.png"
    target.write_bytes(b"kept")
    finished = subprocess.run(
        [sys.executable, "-c", WRITE_ON_A_FULL_DISK, str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert finished.stdout.strip() == "OSError", finished
    assert target.read_bytes() == b"kept"
    assert sorted(tmp_path.iterdir()) == [target]
