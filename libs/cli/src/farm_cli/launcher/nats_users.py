"""The embedded nats-server's users, one per farm process that connects, and its config file.

Passwords are made once per farm and kept in FARM_HOME/nats/users.json (mode 0600);
the config (same mode) gives each user its role's permissions (farm_core.nats_roles)
and, with TLS, the certificate NATS serves. Agent users are made for every agent the
farm may run (the most of `--agents MIN..MAX`), so an agent the autoscaler starts
later already has one.
"""

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from farm_cli.launcher.credentials import write_private
from farm_cli.launcher.services import SharedSettings
from farm_cli.launcher.tls import TlsFiles
from farm_core.nats_roles import NatsRole, permissions

CORE_USERS = ("scheduler", "auth")
STORAGE_USER = "storage"


@dataclass(frozen=True)
class NatsUser:
    """One NATS user of the local farm."""

    name: str
    role: NatsRole


def farm_users(agent_names: list[str]) -> list[NatsUser]:
    """The users of a farm whose agents are `agent_names`."""
    users = [NatsUser(name, NatsRole.CORE) for name in CORE_USERS]
    users.append(NatsUser(STORAGE_USER, NatsRole.STORAGE))
    users += [NatsUser(name, NatsRole.AGENT) for name in agent_names]
    return users


def load_or_create_passwords(path: Path, users: list[NatsUser]) -> dict[str, str]:
    """Each user's password from `path` (JSON), a new one for a user not there yet."""
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    passwords = {user.name: stored.get(user.name) or secrets.token_urlsafe(24) for user in users}
    if passwords != stored:
        write_private(path, json.dumps({**stored, **passwords}))
    return passwords


def write_server_config(
    path: Path, users: list[NatsUser], passwords: Mapping[str, str], tls: TlsFiles | None
) -> None:
    """nats-server's config (users, permissions, TLS) at `path`, readable only by its owner.

    The config format accepts JSON.
    """
    config: dict[str, object] = {
        "authorization": {
            "users": [
                {
                    "user": user.name,
                    "password": passwords[user.name],
                    "permissions": permissions(user.role, user.name).server_config(),
                }
                for user in users
            ]
        }
    }
    if tls is not None:
        config["tls"] = {"cert_file": str(tls.cert), "key_file": str(tls.key), "timeout": 5}
    write_private(path, json.dumps(config, indent=2))


def nats_config_path(home: Path) -> Path:
    """The embedded nats-server's config file under FARM_HOME."""
    return home / "nats" / "server.json"


def with_nats_users(shared: SharedSettings, home: Path, agents: int) -> SharedSettings:
    """`shared` with the users' passwords (and NATS's CA with TLS); the config written.

    With internal TLS on, NATS serves the services' certificate and clients check it
    with its CA.
    """
    users = farm_users([f"agent-{index}" for index in range(1, agents + 1)])
    passwords = load_or_create_passwords(home / "nats" / "users.json", users)
    write_server_config(nats_config_path(home), users, passwords, shared.internal_tls)
    ca = shared.internal_tls.ca if shared.internal_tls is not None else None
    return replace(shared, nats_passwords=passwords, nats_ca=ca)
