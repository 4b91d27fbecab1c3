"""`farm up --tls` with the real services: they speak mutual TLS among themselves.

A task goes through Envoy (TLS to the client, mutual TLS to auth for ext_authz and
to the scheduler), the agent uploads its screenshot to storage and storage asks
auth for the byte quota, each over mutual TLS; a caller without the farm's
internal certificate is refused by every service port.
"""

import datetime as dt
import ssl
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from farm_cli.launcher.config import FarmConfig, FarmPorts
from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.health import grpc_serving
from farm_core.transport import InternalTls
from tests.integration.cli.conftest import ROOT
from tests.pages import Site

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FINAL = {"TASK_STATUS_SUCCEEDED", "TASK_STATUS_FAILED", "TASK_STATUS_CANCELLED"}


@pytest.fixture(scope="module")
def mtls_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    """A whole farm (one agent) with `tls` on, started once for this module."""
    config = FarmConfig(
        root=ROOT,
        home=tmp_path_factory.mktemp("mtls"),
        ports=FarmPorts.free(),
        agents=1,
        agent_allow="127.0.0.0/8",
        seaweedfs_stop_timeout=2.0,
        tls=True,
    )
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
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def foreign_tls(trusted_ca: bytes) -> InternalTls:
    """A self-signed client certificate the farm's CA never signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intruder")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return InternalTls(certificate.public_bytes(serialization.Encoding.PEM), key_pem, trusted_ca)


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
        deadline = time.monotonic() + 60
        while (task := http.get(f"/v1/tasks/{task_id}").json())["status"] not in FINAL:
            assert time.monotonic() < deadline, f"task still {task['status']}"
            time.sleep(0.2)
        assert task["status"] == "TASK_STATUS_SUCCEEDED", task
        [artifact] = task["result"]["artifacts"]
        content = http.get(f"/v1/artifacts/{artifact['id']}:content")
    assert content.status_code == 200
    assert content.content.startswith(b"\x89PNG")


def test_the_services_serve_only_mutual_tls(mtls_farm: LocalFarm) -> None:
    tls = internal_tls(mtls_farm)
    without_certificate = grpc.ssl_channel_credentials(root_certificates=tls.ca)
    intruder = foreign_tls(tls.ca)
    for address in service_addresses(mtls_farm):
        assert grpc_serving(address, tls), address
        with grpc.insecure_channel(address) as plain:
            assert health_code(plain) == grpc.StatusCode.UNAVAILABLE, address
        with grpc.secure_channel(address, without_certificate) as anonymous:
            assert health_code(anonymous) == grpc.StatusCode.UNAVAILABLE, address
        with grpc.secure_channel(address, intruder.channel_credentials()) as foreign:
            assert health_code(foreign) == grpc.StatusCode.UNAVAILABLE, address


def test_the_services_are_told_the_internal_certificate(mtls_farm: LocalFarm) -> None:
    files = mtls_farm.internal_tls_files
    assert files is not None and files.ca is not None
    assert files.ca == mtls_farm.config.tls_home / "ca.pem"
    certificate = x509.load_pem_x509_certificate(files.cert.read_bytes())
    certificate.verify_directly_issued_by(x509.load_pem_x509_certificate(files.ca.read_bytes()))
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {oid.dotted_string for oid in usage} == {"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"}
