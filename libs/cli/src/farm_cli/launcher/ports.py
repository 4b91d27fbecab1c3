"""The local farm's ports: the defaults, FARM_<WHAT>_PORT, a whole farm moved by an offset."""

import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace

from farm_cli.launcher.infra import NatsPorts, SeaweedPorts
from farm_cli.launcher.processes import distinct_free_port
from farm_core.free_ports import free_port

# The lowest port an offset may move a default to: below it a farm would need root.
LOWEST_OFFSET_PORT = 1024
HIGHEST_PORT = 65535
# An offset whose farm shares no port with a farm on the defaults (the docs' example).
SUGGESTED_PORT_OFFSET = 1000
# Ports from 1024 up that Chromium opens no page on (net::ERR_UNSAFE_PORT, Chromium's
# kRestrictedPorts in net/base/port_util.cc, each tried with Debian's chromium; Firefox
# refuses them too). A farm whose Envoy listens on one answers curl, the SDK and gRPC,
# but its console opens in no browser: --port-offset 2000 puts Envoy on 10080.
BROWSER_REFUSED_PORTS = frozenset(
    {1719, 1720, 1723, 2049, 3659, 4045, 5060, 5061, 6000, 6566}
    | {6665, 6666, 6667, 6668, 6669, 6697, 10080}
)


def port_is_free(port: int) -> bool:
    """Whether a TCP port on 127.0.0.1 can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_block(count: int, taken: set[int], attempts: int = 100) -> int:
    """The first of `count` consecutive free TCP ports on 127.0.0.1, none in `taken`."""
    for _ in range(attempts):
        first = free_port()
        block = range(first, first + count)
        if block[-1] > 65535 or taken.intersection(block):
            continue
        if all(port_is_free(port) for port in block[1:]):
            taken.update(block)
            return first
    raise OSError(f"no block of {count} free consecutive ports found")


# Agents' ports are consecutive from a base; this many are reserved for them.
MAX_AGENTS = 10
_AGENT_BASES = ("agent_base", "agent_metrics_base", "agent_session_base")


@dataclass(frozen=True)
class FarmPorts:
    """Every port the local farm listens on (see docs/architecture.md)."""

    envoy: int = 8080
    envoy_admin: int = 9901
    auth: int = 7101
    # The auth service's edge check (HTTP), which Envoy's ext_authz calls.
    auth_check: int = 7106
    storage: int = 7102
    scheduler: int = 7103
    # The MCP service's HTTP port (/mcp behind Envoy, /healthz).
    mcp: int = 7104
    # The web console's HTTP port (/console/ behind Envoy, /healthz).
    console: int = 7105
    auth_metrics: int = 7201
    storage_metrics: int = 7202
    scheduler_metrics: int = 7203
    mcp_metrics: int = 7204
    console_metrics: int = 7205
    # Agent n (from 1) listens on agent_base + n - 1, its metrics on agent_metrics_base + n - 1,
    # its sessions' CDP and live view endpoints on agent_session_base + n - 1.
    agent_base: int = 7110
    agent_metrics_base: int = 7210
    agent_session_base: int = 7150
    nats: int = 7422
    nats_monitor: int = 7822
    prometheus: int = 9090
    # The local trace sink (--traces): OTLP/gRPC's usual port.
    traces: int = 4317
    seaweed_master: int = 7301
    seaweed_volume: int = 7302
    seaweed_filer: int = 7303
    seaweed_s3: int = 7304
    seaweed_master_grpc: int = 17301
    seaweed_volume_grpc: int = 17302
    seaweed_filer_grpc: int = 17303
    seaweed_s3_grpc: int = 17304
    seaweed_metrics: int = 7305

    @classmethod
    def free(cls) -> "FarmPorts":
        """Distinct ports that are free right now, for tests that run a farm beside others."""
        taken: set[int] = set()
        blocks = {name: _free_port_block(MAX_AGENTS, taken) for name in _AGENT_BASES}
        single = {
            port_field.name: distinct_free_port(taken)
            for port_field in fields(cls)
            if port_field.name not in _AGENT_BASES
        }
        return cls(**blocks, **single)

    @staticmethod
    def variable(name: str) -> str:
        """The environment variable that sets the port field `name`.

        FARM_<FIELD>_PORT, so the services' own names (FARM_AUTH_PORT,
        FARM_AGENT_METRICS_PORT, ...) mean the same to the launcher.
        """
        return f"FARM_{name.removesuffix('_base').upper()}_PORT"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], offset: int = 0) -> "FarmPorts":
        """The defaults moved by `offset`, each port whose variable is set in `environ` replaced.

        A port set by name is taken as it is, not moved by the offset.
        """
        chosen: dict[str, int] = {}
        for port_field in fields(cls):
            text = environ.get(cls.variable(port_field.name), "").strip()
            if not text:
                continue
            if not text.isdigit() or not 0 < int(text) < 65536:
                raise ValueError(f"{cls.variable(port_field.name)} must be a port, got {text!r}")
            chosen[port_field.name] = int(text)
        return replace(cls().shifted(offset), **chosen)

    def shifted(self, offset: int) -> "FarmPorts":
        """Every port moved by `offset` (agents' ports with their bases)."""
        check_port_offset(offset)
        return replace(self, **{f.name: getattr(self, f.name) + offset for f in fields(self)})

    def environment(self) -> dict[str, str]:
        """The variables that make from_environment() return these ports."""
        return {self.variable(f.name): str(getattr(self, f.name)) for f in fields(self)}

    def agent(self, index: int) -> int:
        """The gRPC (health) port of agent `index`, counted from 1."""
        return self.agent_base + index - 1

    def agent_metrics(self, index: int) -> int:
        """The metrics port of agent `index`, counted from 1."""
        return self.agent_metrics_base + index - 1

    def agent_session(self, index: int) -> int:
        """The session endpoints' port of agent `index`, counted from 1."""
        return self.agent_session_base + index - 1

    def nats_ports(self) -> NatsPorts:
        """The embedded nats-server's ports."""
        return NatsPorts(client=self.nats, monitor=self.nats_monitor)

    def seaweed_ports(self) -> SeaweedPorts:
        """SeaweedFS's ports."""
        return SeaweedPorts(
            master=self.seaweed_master,
            volume=self.seaweed_volume,
            filer=self.seaweed_filer,
            s3=self.seaweed_s3,
            master_grpc=self.seaweed_master_grpc,
            volume_grpc=self.seaweed_volume_grpc,
            filer_grpc=self.seaweed_filer_grpc,
            s3_grpc=self.seaweed_s3_grpc,
            metrics=self.seaweed_metrics,
        )

    def all_ports(self, agents: int) -> Iterator[tuple[str, int]]:
        """(what, port) for every port a farm with `agents` agents listens on."""
        for port_field in fields(self):
            if port_field.name not in _AGENT_BASES:
                yield port_field.name, getattr(self, port_field.name)
        for index in range(1, agents + 1):
            yield f"agent-{index}", self.agent(index)
            yield f"agent-{index} metrics", self.agent_metrics(index)
            yield f"agent-{index} sessions", self.agent_session(index)


def port_offset_range() -> range:
    """The offsets that keep every default port, all agents' included, within range."""
    defaults = [port for _, port in FarmPorts().all_ports(agents=MAX_AGENTS)]
    return range(LOWEST_OFFSET_PORT - min(defaults), HIGHEST_PORT - max(defaults) + 1)


def check_port_offset(offset: int) -> None:
    """Raises ValueError unless `offset` keeps every port in range and clear of the defaults.

    An offset is for a farm beside one on the default ports, so none of its ports may
    be one of theirs (+100 would put auth on 7201, the default auth metrics port).
    """
    allowed = port_offset_range()
    if offset not in allowed:
        raise ValueError(
            f"must be between {allowed.start} and {allowed.stop - 1} so that every port of "
            f"the farm stays between {LOWEST_OFFSET_PORT} and {HIGHEST_PORT}, got {offset}"
        )
    if offset == 0:
        return
    defaults = dict((port, what) for what, port in FarmPorts().all_ports(agents=MAX_AGENTS))
    for what, port in FarmPorts().all_ports(agents=MAX_AGENTS):
        if port + offset in defaults:
            raise ValueError(
                f"{offset} would move {what} to {port + offset}, the default port of "
                f"{defaults[port + offset]} in a farm beside it; try {SUGGESTED_PORT_OFFSET}"
            )


def browser_refused_warning(ports: FarmPorts, observe: bool = False) -> str:
    """A warning naming the ports of `ports` a browser opens but refuses; "" for none.

    Envoy's (the console, sessions' live views) and, with --observe, Prometheus's.
    """
    opened = [("Envoy", ports.envoy, "the web console and sessions' live views")]
    if observe:
        opened.append(("Prometheus", ports.prometheus, "Prometheus's pages"))
    refused = [
        (f"{what}'s {port}", pages) for what, port, pages in opened if port in BROWSER_REFUSED_PORTS
    ]
    if not refused:
        return ""
    return (
        f"warning: browsers refuse to open {' and '.join(name for name, _ in refused)} "
        f"(net::ERR_UNSAFE_PORT in Chromium): {' and '.join(pages for _, pages in refused)} "
        "will open in no browser (curl, the SDK and gRPC clients are not affected); another "
        f"port avoids it, e.g. --port-offset {SUGGESTED_PORT_OFFSET}"
    )
