"""The whole farm for end-to-end tests: real processes behind a real Envoy.

One farm serves the session (NATS, SeaweedFS, auth, storage, scheduler, two
agents, Envoy) on free ports, started the way `farm up` starts it; the test pages
come from tests/pages.py on 127.0.0.1, which the agents are allowed to reach.
"""

import secrets
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from farm_cli.launcher.config import find_project_root
from farm_cli.launcher.farm import LocalFarm
from tests.farms import whole_farm_config

ROOT = find_project_root(Path(__file__).parent)
FINAL_STATES = {"TASK_STATUS_SUCCEEDED", "TASK_STATUS_FAILED", "TASK_STATUS_CANCELLED"}


@pytest.fixture(scope="session")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    """The farm, started once for all end-to-end tests and stopped by PID at the end."""
    with LocalFarm(whole_farm_config(tmp_path_factory.mktemp("farm"))) as running:
        yield running


@dataclass(frozen=True)
class Client:
    """HTTP/JSON access to the farm through Envoy with one API key."""

    http: httpx.Client
    key: str

    def run(self, spec: dict[str, Any]) -> dict[str, Any]:
        """RunTask: the finished task."""
        response = self.http.post("/v1/tasks:run", json=spec)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def create(self, spec: dict[str, Any]) -> dict[str, Any]:
        """CreateTask: the queued task."""
        response = self.http.post("/v1/tasks", json=spec)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def get(self, task_id: str) -> dict[str, Any]:
        """GetTask."""
        response = self.http.get(f"/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait(self, task_id: str, *, within: float = 60.0) -> dict[str, Any]:
        """Polls GetTask until the task is final; fails after `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            task = self.get(task_id)
            if task["status"] in FINAL_STATES:
                return task
            if time.monotonic() > deadline:
                pytest.fail(f"task {task_id} still {task['status']} after {within} s")
            time.sleep(0.1)

    def wait_for_status(self, task_id: str, status: str, *, within: float = 30.0) -> None:
        """Polls GetTask until the task reaches `status`."""
        deadline = time.monotonic() + within
        while self.get(task_id)["status"] != status:
            if time.monotonic() > deadline:
                pytest.fail(f"task {task_id} not {status} after {within} s")
            time.sleep(0.05)

    def artifact_bytes(self, artifact_id: str) -> httpx.Response:
        """GetArtifactContent over HTTP: the raw bytes with their content type."""
        response = self.http.get(f"/v1/artifacts/{artifact_id}:content")
        assert response.status_code == 200, response.text
        return response


def http_client(farm: LocalFarm, key: str | None) -> httpx.Client:
    """An HTTP client for the farm's Envoy, with `key` as bearer if given."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=farm.envoy_url, headers=headers, timeout=120)


@pytest.fixture(scope="session")
def admin(farm: LocalFarm) -> Iterator[Client]:
    """The bootstrap admin key's client (tenant "default", every scope)."""
    with http_client(farm, farm.admin_key) as http:
        yield Client(http, farm.admin_key)


@pytest.fixture(scope="session")
def grpc_target(farm: LocalFarm) -> str:
    """host:port of Envoy for gRPC clients."""
    return farm.envoy_url.removeprefix("http://")


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
def make_key(farm: LocalFarm, channel: grpc.Channel) -> KeyFactory:
    """Creates API keys: make_key("tasks.read", tenant="other")."""
    return KeyFactory(farm, channel)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def unique_label() -> dict[str, str]:
    """A label no other test uses, to find this test's tasks."""
    return {"test": secrets.token_hex(6)}
