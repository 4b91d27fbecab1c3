"""Envoy calling the services over mutual TLS checks that each certificate names its endpoint.

A certificate from the farm's internal CA is not enough: one issued for another
name is refused, so a service's certificate cannot stand in for a different host.
"""

import datetime as dt
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health, health_pb2_grpc

from farm_cli.launcher.envoy import (
    Endpoint,
    EnvoySettings,
    envoy_ready,
    envoy_spec,
    write_envoy_config,
)
from farm_cli.launcher.processes import ManagedProcess, free_port, wait_until
from farm_cli.launcher.tls import TlsFiles, load_or_create_internal_tls
from tests.helpers import assert_eventually
from tests.integration.cli.conftest import ROOT

pytestmark = pytest.mark.integration


def certificate_for(tls: TlsFiles, name: str, folder: Path) -> tuple[bytes, bytes]:
    """A server certificate (PEM) and its key for DNS `name`, issued by `tls`'s CA."""
    assert tls.ca is not None
    ca_cert = x509.load_pem_x509_certificate(tls.ca.read_bytes())
    ca_key = serialization.load_pem_private_key((folder / "ca-key.pem").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def health_server(cert: bytes, key: bytes, ca: bytes) -> tuple[grpc.Server, int]:
    """A gRPC health service on 127.0.0.1 serving mutual TLS with `cert`."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    credentials = grpc.ssl_server_credentials([(key, cert)], ca, require_client_auth=True)
    port = server.add_secure_port(f"127.0.0.1:{free_port()}", credentials)
    server.start()
    return server, port


@pytest.fixture
def envoy_before_named_services(tmp_path: Path) -> Iterator[EnvoySettings]:
    """Envoy calling auth and scheduler, whose certificates name 127.0.0.1, and storage,
    whose certificate from the same CA names only elsewhere.test."""
    folder = tmp_path / "tls"
    internal = load_or_create_internal_tls(folder)
    assert internal.ca is not None
    ca = internal.ca.read_bytes()
    named = (internal.cert.read_bytes(), internal.key.read_bytes())
    misnamed = certificate_for(internal, "elsewhere.test", folder)
    servers = {
        service: health_server(*pair, ca)
        for service, pair in (("auth", named), ("storage", misnamed), ("scheduler", named))
    }
    settings = EnvoySettings(
        listen_port=free_port(),
        admin_port=free_port(),
        descriptor_path=ROOT / "envoy" / "farm.binpb",
        upstreams={name: [Endpoint("127.0.0.1", port)] for name, (_, port) in servers.items()},
        upstream_cert_path=internal.cert,
        upstream_key_path=internal.key,
        upstream_ca_path=internal.ca,
    )
    config = write_envoy_config(ROOT / "envoy" / "envoy.yaml.j2", settings, tmp_path / "e.yaml")
    process = ManagedProcess(envoy_spec(config), tmp_path, tmp_path)
    process.start()
    try:
        wait_until(lambda: envoy_ready(settings), timeout=30, what="envoy", process=process)
        yield settings
    finally:
        process.stop(timeout=5)
        for server, _ in servers.values():
            server.stop(None)


def envoy_stats(settings: EnvoySettings) -> dict[str, int]:
    """Envoy's counters and gauges by name, read from its admin port."""
    answer = httpx.get(f"http://127.0.0.1:{settings.admin_port}/stats", timeout=5)
    stats = {}
    for line in answer.text.splitlines():
        name, _, value = line.partition(": ")
        if value.isdigit():
            stats[name] = int(value)
    return stats


async def test_a_service_certificate_for_another_name_is_refused(
    envoy_before_named_services: EnvoySettings,
) -> None:
    def settled() -> bool:
        stats = envoy_stats(envoy_before_named_services)
        return bool(
            stats.get("cluster.auth.membership_healthy") == 1
            and stats.get("cluster.storage.ssl.fail_verify_san", 0) > 0
        )

    await assert_eventually(settled, within=20, message="auth healthy, storage's name refused")
    stats = envoy_stats(envoy_before_named_services)
    assert stats["cluster.scheduler.membership_healthy"] == 1
    assert stats["cluster.storage.membership_healthy"] == 0
    assert stats.get("cluster.auth.ssl.fail_verify_san", 0) == 0
