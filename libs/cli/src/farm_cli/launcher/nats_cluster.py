"""A cluster of nats-servers whose routes log in: each server's cluster block and its secret.

Every server asks a route that connects to it for the cluster's route credentials and
gives them on the routes it opens itself, so a host that merely reaches a route port
is refused instead of joining the cluster and seeing every subject and stream.

The cluster block is written to the server's config file, never passed as flags:
nats-server's `--cluster` flag drops the credentials a file gives, and a command line
is readable by every user of the host.
"""

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from farm_cli.launcher.credentials import write_private

ROUTE_USER = "route"
ROUTE_AUTH_TIMEOUT_SECONDS = 2


@dataclass(frozen=True)
class RouteCredentials:
    """The login each server of a NATS cluster asks of a route, and gives on its own."""

    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class NatsCluster:
    """One nats-server's place in a cluster: its name, route port, peers and route login."""

    name: str
    route_port: int
    # host:port of every server's route port (this one's included, which it skips).
    routes: tuple[str, ...]
    credentials: RouteCredentials = field(repr=False)

    def config(self, host: str) -> dict[str, object]:
        """nats-server's `cluster` block for the server listening for routes on `host`."""
        user = quote(self.credentials.user, safe="")
        password = quote(self.credentials.password, safe="")
        return {
            "name": self.name,
            "listen": f"{host}:{self.route_port}",
            "authorization": {
                "user": self.credentials.user,
                "password": self.credentials.password,
                "timeout": ROUTE_AUTH_TIMEOUT_SECONDS,
            },
            "routes": [f"nats://{user}:{password}@{route}" for route in self.routes],
        }


def write_cluster_config(
    path: Path, cluster: NatsCluster, host: str, base_config: Path | None = None
) -> Path:
    """nats-server's config at `path` (mode 0600): `base_config`'s (JSON) plus the cluster.

    `base_config` is a config such as nats_users.write_server_config writes (users,
    TLS); the config format accepts JSON.
    """
    config: dict[str, object] = (
        json.loads(base_config.read_text()) if base_config is not None else {}
    )
    config["cluster"] = cluster.config(host)
    write_private(path, json.dumps(config, indent=2))
    return path


def load_or_create_route_credentials(path: Path) -> RouteCredentials:
    """The cluster's route login from `path` (JSON), made once and written there (0600)."""
    if path.exists():
        stored = json.loads(path.read_text())
        return RouteCredentials(stored["user"], stored["password"])
    # Hex: a route URL carries the password, so it needs no escaping anywhere.
    credentials = RouteCredentials(ROUTE_USER, secrets.token_hex(24))
    write_private(path, json.dumps({"user": credentials.user, "password": credentials.password}))
    return credentials
