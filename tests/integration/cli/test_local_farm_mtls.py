"""`farm up --tls` with the real services: they speak mutual TLS among themselves.

A task goes through Envoy (TLS to the client, mutual TLS to auth for ext_authz and
to the scheduler), the agent uploads its screenshot to storage and storage asks
auth for the byte quota, each over mutual TLS; a caller without the farm's
internal certificate is refused by every service port.
"""

import json
import ssl
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import httpx
import nats
import nats.errors
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.health import grpc_serving
from farm_cli.launcher.tls import load_or_create_internal_tls
from farm_core.transport import InternalTls
from tests.farms import whole_farm_config
from tests.helpers import eventually
from tests.pages import Site

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FINAL = {"TASK_STATUS_SUCCEEDED", "TASK_STATUS_FAILED", "TASK_STATUS_CANCELLED"}


@pytest.fixture(scope="module")
def mtls_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    """A whole farm (one agent) with `tls` on, started once for this module."""
    config = replace(whole_farm_config(tmp_path_factory.mktemp("mtls"), agents=1), tls=True)
    with LocalFarm(config) as farm:
        yield farm


def internal_tls(farm: LocalFarm) -> InternalTls:
    files = farm.internal_tls_files
    assert files is not None and files.ca is not None
    return InternalTls.load(files.cert, files.key, files.ca)


def service_addresses(farm: LocalFarm) -> list[str]:
    ports = farm.config.ports
    return [
        f"127.0.0.1:{port}" for port in (ports.auth, ports.storage, ports.scheduler, ports.agent(1))
    ]


def health_code(channel: grpc.Channel) -> grpc.StatusCode:
    """The status of a Health.Check over `channel`: OK when it was answered."""
    try:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def foreign_tls(folder: Path, trusted_ca: bytes) -> InternalTls:
    """A client certificate from another CA (made under `folder`) the farm never trusted."""
    other = load_or_create_internal_tls(folder)
    return InternalTls(other.cert.read_bytes(), other.key.read_bytes(), trusted_ca)


def test_a_task_runs_end_to_end_over_mutual_tls(mtls_farm: LocalFarm, site: Site) -> None:
    files = mtls_farm.tls_files
    assert files is not None and files.ca is not None
    trusting = ssl.create_default_context(cafile=str(files.ca))
    headers = {"authorization": f"Bearer {mtls_farm.admin_key}"}
    with httpx.Client(
        base_url=mtls_farm.envoy_url, verify=trusting, headers=headers, timeout=30
    ) as http:
        created = http.post("/v1/tasks", json={"url": site.url("/page"), "screenshot": {}})
        assert created.status_code == 200, created.text
        task_id = created.json()["id"]

        def final() -> dict[str, Any] | None:
            task: dict[str, Any] = http.get(f"/v1/tasks/{task_id}").json()
            return task if task["status"] in FINAL else None

        task = eventually(final, within=60, interval=0.2, message=f"task {task_id} not final")
        assert task["status"] == "TASK_STATUS_SUCCEEDED", task
        [artifact] = task["result"]["artifacts"]
        content = http.get(f"/v1/artifacts/{artifact['id']}:content")
    assert content.status_code == 200
    assert content.content.startswith(b"\x89PNG")


def test_the_services_serve_only_mutual_tls(mtls_farm: LocalFarm, tmp_path: Path) -> None:
    tls = internal_tls(mtls_farm)
    without_certificate = grpc.ssl_channel_credentials(root_certificates=tls.ca)
    intruder = foreign_tls(tmp_path, tls.ca)
    for address in service_addresses(mtls_farm):
        assert grpc_serving(address, tls), address
        with grpc.insecure_channel(address) as plain:
            assert health_code(plain) == grpc.StatusCode.UNAVAILABLE, address
        with grpc.secure_channel(address, without_certificate) as anonymous:
            assert health_code(anonymous) == grpc.StatusCode.UNAVAILABLE, address
        with grpc.secure_channel(address, intruder.channel_credentials()) as foreign:
            assert health_code(foreign) == grpc.StatusCode.UNAVAILABLE, address


async def test_a_sessions_cdp_socket_is_wss_and_its_agent_endpoint_takes_only_mutual_tls(
    mtls_farm: LocalFarm, site: Site
) -> None:
    files = mtls_farm.tls_files
    assert files is not None and files.ca is not None
    trusting = ssl.create_default_context(cafile=str(files.ca))
    headers = {"authorization": f"Bearer {mtls_farm.admin_key}"}
    async with httpx.AsyncClient(
        base_url=mtls_farm.envoy_url, verify=trusting, headers=headers, timeout=60
    ) as http:
        created = await http.post("/v1/sessions", json={})
        assert created.status_code == 200, created.text
        session = created.json()
        assert session["cdpUrl"].startswith("wss://")
        try:
            run = await http.post(
                f"/v1/sessions/{session['id']}:run", json={"url": site.url("/page")}
            )
            assert run.status_code == 200, run.text
            async with (
                aiohttp.ClientSession() as client,
                client.ws_connect(session["cdpUrl"], headers=headers, ssl=trusting) as socket,
            ):
                await socket.send_str(json.dumps({"id": 1, "method": "Target.getTargets"}))
                reply = json.loads((await socket.receive()).data)
            pages = [t["url"] for t in reply["result"]["targetInfos"] if t["type"] == "page"]
            assert pages == [site.url("/page")]
        finally:
            await http.post(f"/v1/sessions/{session['id']}:close")
    endpoint = f"127.0.0.1:{mtls_farm.config.ports.agent_session(1)}"
    async with aiohttp.ClientSession() as client:
        with pytest.raises(aiohttp.ClientError):
            await client.get(f"http://{endpoint}/healthz")
        with pytest.raises(aiohttp.ClientError):
            await client.get(f"https://{endpoint}/healthz", ssl=trusting)


async def test_nats_speaks_only_tls_that_clients_verify(mtls_farm: LocalFarm) -> None:
    access = mtls_farm.nats_access("scheduler")
    assert access.ca_file is not None
    connection = await nats.connect(**access.connect_options(), connect_timeout=5)
    try:
        assert connection.is_connected
    finally:
        await connection.close()
    # Without TLS the server refuses the client (it requires TLS).
    plain = {**access.connect_options(), "tls": None}
    with pytest.raises((nats.errors.Error, OSError)):
        await nats.connect(**plain, allow_reconnect=False, connect_timeout=2)
    # A client that does not trust the farm's CA refuses the server's certificate.
    stranger = {**access.connect_options(), "tls": ssl.create_default_context()}
    with pytest.raises((nats.errors.Error, OSError, ssl.SSLError)):
        await nats.connect(**stranger, allow_reconnect=False, connect_timeout=2)
