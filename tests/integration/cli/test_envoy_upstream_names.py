"""Envoy calling the services over mutual TLS checks that each certificate names its endpoint.

A certificate from the farm's internal CA is not enough: one issued for another
name is refused, so a service's certificate cannot stand in for a different host.
"""

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from grpc_health.v1 import health, health_pb2_grpc

from farm_cli.launcher.envoy import (
    Endpoint,
    EnvoySettings,
    envoy_ready,
    envoy_spec,
    write_envoy_config,
)
from farm_cli.launcher.processes import ManagedProcess, free_ports, wait_until
from farm_cli.launcher.tls import load_or_create_internal_tls, load_or_issue
from farm_core.free_ports import free_port
from farm_core.transport import InternalTls
from tests.helpers import assert_eventually
from tests.integration.cli.conftest import ROOT

pytestmark = pytest.mark.integration


def health_server(tls: InternalTls) -> tuple[grpc.Server, int]:
    """A gRPC health service on 127.0.0.1 serving mutual TLS as a farm service does."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_secure_port(f"127.0.0.1:{free_port()}", tls.server_credentials())
    server.start()
    return server, port


@pytest.fixture
def envoy_before_named_services(tmp_path: Path) -> Iterator[EnvoySettings]:
    """Envoy calling auth and scheduler, whose certificates name 127.0.0.1, and storage,
    whose certificate from the same CA names only elsewhere.test."""
    folder = tmp_path / "tls"
    internal = load_or_create_internal_tls(folder)
    assert internal.ca is not None
    named = InternalTls.load(internal.cert, internal.key, internal.ca)
    elsewhere = load_or_issue(
        folder,
        "elsewhere",
        (ExtendedKeyUsageOID.SERVER_AUTH,),
        x509.SubjectAlternativeName([x509.DNSName("elsewhere.test")]),
    )
    misnamed = InternalTls.load(elsewhere.cert, elsewhere.key, internal.ca)
    servers = {
        service: health_server(tls)
        for service, tls in (("auth", named), ("storage", misnamed), ("scheduler", named))
    }
    listen_port, admin_port = free_ports(2)
    settings = EnvoySettings(
        listen_port=listen_port,
        admin_port=admin_port,
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
