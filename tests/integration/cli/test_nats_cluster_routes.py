"""A NATS cluster whose routes log in (launcher/nats_cluster.py), on real nats-servers.

Two servers with the route credentials form the cluster; a third that reaches their
route ports without the credentials is refused: it holds no route and hears nothing
published on the cluster.
"""

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import nats
import pytest

from farm_cli.launcher import infra
from farm_cli.launcher.nats_cluster import (
    NatsCluster,
    load_or_create_route_credentials,
    write_cluster_config,
)
from farm_cli.launcher.processes import ManagedProcess, ProcessSpec, free_ports, wait_until

pytestmark = pytest.mark.integration

CLUSTER = "farm"


@dataclass(frozen=True)
class Server:
    """A started nats-server: its ports and process."""

    ports: infra.NatsPorts
    process: ManagedProcess

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.ports.client}"

    def route_names(self) -> set[str]:
        """The server names of the routes it holds (its monitor's /routez)."""
        address = f"http://127.0.0.1:{self.ports.monitor}/routez"
        with urllib.request.urlopen(address, timeout=2) as response:
            routes = json.load(response)["routes"] or []
        return {route.get("remote_name", "") for route in routes}


def start(spec: ProcessSpec, ports: infra.NatsPorts, state: Path) -> Server:
    process = ManagedProcess(spec, state, state)
    process.start()
    wait_until(lambda: infra.nats_ready(ports), timeout=30, what=spec.name, process=process)
    return Server(ports, process)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    state = tmp_path_factory.mktemp("nats-cluster")
    route_ports = dict(zip(("a", "b", "rogue"), free_ports(3), strict=True))
    member_routes = tuple(f"127.0.0.1:{route_ports[name]}" for name in ("a", "b"))
    credentials = load_or_create_route_credentials(state / "routes.json")
    started: dict[str, Server] = {}
    try:
        for name in ("a", "b"):
            ports = infra.NatsPorts(*free_ports(2))
            cluster = NatsCluster(CLUSTER, route_ports[name], member_routes, credentials)
            config = write_cluster_config(state / f"{name}.json", cluster, "127.0.0.1")
            spec = infra.nats_spec(ports, state / name, config, name=name, server_name=name)
            started[name] = start(spec, ports, state)
        # What any host that reaches the route ports could run: the same cluster name
        # and routes, no credentials.
        ports = infra.NatsPorts(*free_ports(2))
        spec = infra.nats_spec(ports, state / "rogue", name="rogue", server_name="rogue")
        solicit = ",".join(f"nats://{route}" for route in member_routes)
        spec = replace(
            spec,
            argv=[
                *spec.argv,
                *("--cluster_name", CLUSTER),
                *("--cluster", f"nats://127.0.0.1:{route_ports['rogue']}"),
                *("--routes", solicit),
            ],
        )
        started["rogue"] = start(spec, ports, state)
        yield started
    finally:
        for server in started.values():
            server.process.stop(timeout=5)


def refused_routes(server: Server) -> int:
    """How many route logins `server` has refused, by its log."""
    log = server.process.log_path.read_text(errors="replace")
    return log.count("Router connection closed: Authentication Failure")


async def test_a_server_without_the_route_login_is_refused_while_the_cluster_works(
    servers: dict[str, Server],
) -> None:
    a, b, rogue = servers["a"], servers["b"], servers["rogue"]
    wait_until(lambda: a.route_names() == {"b"}, timeout=15, what="routes a-b", process=a.process)
    wait_until(lambda: refused_routes(a) > 0, timeout=15, what="a refusing", process=a.process)
    wait_until(lambda: refused_routes(b) > 0, timeout=15, what="b refusing", process=b.process)
    assert rogue.route_names() == set()
    assert b.route_names() == {"a"}

    publisher = await nats.connect(a.url)
    member = await nats.connect(b.url)
    outsider = await nats.connect(rogue.url)
    try:
        heard_by_member = await member.subscribe("orders.>")
        heard_by_outsider = await outsider.subscribe("orders.>")
        await member.flush()
        await outsider.flush()
        # Interest crosses a route asynchronously: publish until the member hears one.
        for _ in range(50):
            await publisher.publish("orders.secret", b"for the cluster only")
            await publisher.flush()
            try:
                message = await heard_by_member.next_msg(timeout=0.1)
                break
            except nats.errors.TimeoutError:
                continue
        else:
            pytest.fail("the cluster did not carry a message from a to b")
        assert message.data == b"for the cluster only"
        with pytest.raises(nats.errors.TimeoutError):
            await heard_by_outsider.next_msg(timeout=0.5)
    finally:
        for client in (publisher, member, outsider):
            await client.close()
