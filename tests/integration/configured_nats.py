"""A nats-server of a test's own, started from a config file that a SIGHUP reloads.

Its config has the farm's account (JetStream on), a system account (to kick
connections with `$SYS.REQ.SERVER.<id>.KICK`) and a `max_payload`; a test
changes what the server enforces on the connections already made by reloading it.
"""

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from farm_cli.launcher import infra
from farm_cli.launcher.processes import ManagedProcess, free_ports, wait_until

FARM_USER = ("farm", "farm-password")
SYSTEM_USER = ("sys", "sys-password")


def nats_config(max_payload: str, farm_password: str) -> str:
    """The server's config; a reload takes the server name from here, not from its flags."""
    return f"""server_name: farm-local
max_payload: {max_payload}
accounts {{
  FARM {{ jetstream: enabled, users [ {{user: {FARM_USER[0]}, password: {farm_password}}} ] }}
  SYS {{ users [ {{user: {SYSTEM_USER[0]}, password: {SYSTEM_USER[1]}}} ] }}
}}
system_account: SYS
"""


@dataclass(frozen=True)
class ConfiguredNats:
    """A running nats-server whose config file a test may change and reload."""

    host_port: str
    config: Path
    process: ManagedProcess

    @property
    def url(self) -> str:
        """The URL without credentials, as a farm process is given it (with NATS_USER)."""
        return f"nats://{self.host_port}"

    def url_of(self, user: tuple[str, str] = FARM_USER) -> str:
        """The URL with `user`'s credentials in it."""
        return f"nats://{user[0]}:{user[1]}@{self.host_port}"

    def reload(self, max_payload: str = "1MB", farm_password: str = FARM_USER[1]) -> None:
        """Rewrites the config and has the server apply it to the connections it has."""
        self.config.write_text(nats_config(max_payload, farm_password))
        self.process.send_signal(signal.SIGHUP)


@contextlib.contextmanager
def running_configured_nats(state: Path) -> Iterator[ConfiguredNats]:
    """A ConfiguredNats with its state under `state`, stopped after."""
    state.mkdir(parents=True, exist_ok=True)
    config = state / "nats.conf"
    config.write_text(nats_config("1MB", FARM_USER[1]))
    ports = infra.NatsPorts(*free_ports(2))
    process = ManagedProcess(infra.nats_spec(ports, state / "data", config), state, state)
    process.start()
    try:
        wait_until(lambda: infra.nats_ready(ports), timeout=30, what="nats-server", process=process)
        yield ConfiguredNats(f"127.0.0.1:{ports.client}", config, process)
    finally:
        process.stop(timeout=5)
