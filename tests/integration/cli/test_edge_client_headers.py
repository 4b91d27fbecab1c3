"""Headers only Envoy and auth's check may set never come from a client, on any route.

The console's route has no check (its sign-in page opens without a key), so nothing
overwrote a client's own x-farm-identity (a replayed signed token) or x-farm-agent
there: they went on to the console as the client sent them. Its x-forwarded-for is the
TCP peer's address, set by Envoy, whatever the client claims.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from farm_cli.launcher.envoy import (
    CONSOLE_CLUSTER,
    Endpoint,
    EnvoySettings,
    envoy_ready,
    envoy_spec,
    write_envoy_config,
)
from farm_cli.launcher.processes import ManagedProcess, free_ports, wait_until
from tests.integration.cli.conftest import ROOT
from tests.unit.cli.fake_auth import GOOD_KEY
from tests.unit.cli.fake_services import start_fake_farm

pytestmark = pytest.mark.integration

ENVOY_ONLY = (
    "x-farm-identity",
    "x-farm-agent",
    "x-farm-client-address",
    "x-farm-content-type",
    "x-farm-refused-items",
)


@dataclass
class Console:
    """A stand-in console: answers 200 and keeps the headers of each request but health's."""

    seen: list[dict[str, str]] = field(default_factory=list)


def start_console(console: Console, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            if self.path != "/healthz":
                console.seen.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextmanager
def edge_with_console(state: Path) -> Iterator[tuple[str, Console]]:
    fakes = start_fake_farm()
    listen_port, admin_port, console_port = free_ports(3)
    console = Console()
    console_server = start_console(console, console_port)
    settings = EnvoySettings(
        listen_port=listen_port,
        admin_port=admin_port,
        descriptor_path=ROOT / "envoy" / "farm.binpb",
        upstreams={
            "auth": [Endpoint("127.0.0.1", fakes.auth_port)],
            "auth_check": [Endpoint("127.0.0.1", fakes.check_port)],
            "storage": [Endpoint("127.0.0.1", fakes.storage_port)],
            "scheduler": [Endpoint("127.0.0.1", fakes.scheduler_port)],
            CONSOLE_CLUSTER: [Endpoint("127.0.0.1", console_port)],
        },
    )
    config = write_envoy_config(ROOT / "envoy" / "envoy.yaml.j2", settings, state / "envoy.yaml")
    process = ManagedProcess(envoy_spec(config), state, state)
    process.start()
    try:
        wait_until(lambda: envoy_ready(settings), timeout=30, what="envoy", process=process)
        yield f"http://127.0.0.1:{listen_port}", console
    finally:
        process.stop(timeout=5)
        console_server.shutdown()
        console_server.server_close()
        fakes.stop()


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Console]]:
    with edge_with_console(tmp_path_factory.mktemp("edge-console")) as running:
        yield running


@pytest.mark.parametrize("key", [None, GOOD_KEY], ids=["no key", "a key"])
def test_the_console_never_gets_a_clients_envoy_only_headers(
    edge: tuple[str, Console], key: str | None
) -> None:
    url, console = edge
    sent = {name: f"from-the-client-{name}" for name in ENVOY_ONLY}
    if key is not None:
        sent["authorization"] = f"Bearer {key}"
    # Mixed case and a second value each: HTTP/1.1 header names are case-blind.
    with httpx.Client(base_url=url, timeout=10) as http:
        headers = [*sent.items(), *((name.upper(), "again") for name in ENVOY_ONLY)]
        response = http.get("/console/", headers=headers)

    assert response.status_code == 200
    got = console.seen[-1]
    assert not set(ENVOY_ONLY) & set(got), got


@pytest.mark.parametrize("source", ["127.0.0.2", "127.0.0.3"])
def test_the_console_is_told_the_clients_own_address_never_one_it_claims(
    edge: tuple[str, Console], source: str
) -> None:
    url, console = edge
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=url, timeout=10, transport=transport) as http:
        claimed = [("x-forwarded-for", "203.0.113.7"), ("X-Forwarded-For", "198.51.100.9")]
        response = http.get("/console/", headers=claimed)

    assert response.status_code == 200
    # The console counts refused sign-ins by this address: the TCP peer, as auth's check does.
    assert console.seen[-1]["x-forwarded-for"] == source
