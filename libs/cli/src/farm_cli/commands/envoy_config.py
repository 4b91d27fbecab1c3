"""`farm envoy-config`: render the farm's Envoy configuration for an Envoy of one's own."""

import argparse
import sys
from pathlib import Path

from farm_cli.console import CliError
from farm_cli.launcher.envoy import (
    AUTH_CHECK_CLUSTER,
    CONSOLE_CLUSTER,
    MAX_DOWNSTREAM_CONNECTIONS,
    MCP_CLUSTER,
    SERVICE_CLUSTERS,
    Endpoint,
    EnvoySettings,
    render_envoy_config,
)
from farm_cli.launcher.ports import FarmPorts


def host_port(text: str) -> Endpoint:
    """An endpoint from HOST:PORT."""
    host, separator, port = text.rpartition(":")
    if not separator or not host or not port.isdigit() or "/" in host or "@" in host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (no scheme, no path), got {text!r}")
    if not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"port {port} of {text!r} is not in 1-65535")
    return Endpoint(host.strip("[]"), int(port))


def upstream(text: str) -> tuple[str, Endpoint]:
    """A replica from NAME=HOST:PORT: auth, auth_check, storage, scheduler, mcp or console."""
    name, separator, address = text.partition("=")
    names = (*SERVICE_CLUSTERS, AUTH_CHECK_CLUSTER, MCP_CLUSTER, CONSOLE_CLUSTER)
    if not separator or name not in names:
        raise argparse.ArgumentTypeError(
            f"expected NAME=HOST:PORT with NAME one of {', '.join(names)}, got {text!r}"
        )
    return name, host_port(address)


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `envoy-config`."""
    render = commands.add_parser(
        "envoy-config",
        help="print the Envoy configuration for your own Envoy",
        description="Renders envoy/envoy.yaml.j2. Each --upstream adds a replica; a service "
        "without any gets the local farm's address, but for mcp and console: /mcp and "
        "/console/ are routed only with --upstream mcp=HOST:PORT and console=HOST:PORT. "
        "Envoy asks auth's edge check (HTTP) on each auth host at --auth-check-port, or "
        "at the --upstream auth_check=HOST:PORT given. "
        "Host names are resolved by DNS (STRICT_DNS), addresses "
        "are used as given (STATIC).",
    )
    render.add_argument(
        "--listen",
        type=host_port,
        default=Endpoint("127.0.0.1", FarmPorts.envoy),
        metavar="HOST:PORT",
        help=f"where Envoy serves the API (default 127.0.0.1:{FarmPorts.envoy})",
    )
    render.add_argument(
        "--admin",
        type=host_port,
        default=Endpoint("127.0.0.1", FarmPorts.envoy_admin),
        metavar="HOST:PORT",
        help=f"Envoy's admin interface (default 127.0.0.1:{FarmPorts.envoy_admin})",
    )
    render.add_argument(
        "--descriptor",
        type=Path,
        help="the descriptor set as Envoy will see it (default: envoy/farm.binpb here)",
    )
    render.add_argument(
        "--upstream",
        dest="upstreams",
        type=upstream,
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help="a replica of a service (repeatable); see above",
    )
    render.add_argument(
        "--auth-check-port",
        type=int,
        default=FarmPorts.auth_check,
        metavar="PORT",
        help="auth's FARM_AUTH_CHECK_PORT on each auth host (default %(default)s)",
    )
    render.add_argument(
        "--tls-cert",
        type=Path,
        help="the listener's certificate chain (PEM, path as Envoy sees it): serve TLS only",
    )
    render.add_argument("--tls-key", type=Path, help="the key of --tls-cert (PEM)")
    render.add_argument(
        "--upstream-tls-cert",
        type=Path,
        help="Envoy's client certificate for services run with FARM_INTERNAL_TLS_* (PEM)",
    )
    render.add_argument("--upstream-tls-key", type=Path, help="the key of --upstream-tls-cert")
    render.add_argument(
        "--upstream-tls-ca", type=Path, help="the CA that signed the services' certificates"
    )
    render.add_argument(
        "--otlp",
        type=host_port,
        metavar="HOST:PORT",
        help="send the requests' spans to this OTLP/gRPC collector (Jaeger, Tempo, an "
        "OpenTelemetry Collector); the services continue each request's trace",
    )
    render.add_argument(
        "--trace-flush-ms",
        type=int,
        metavar="MS",
        help="with --otlp: send the spans every MS milliseconds (default: Envoy's, 5000, "
        "or sooner once 5 spans wait)",
    )
    render.add_argument(
        "--max-connections",
        type=int,
        default=MAX_DOWNSTREAM_CONNECTIONS,
        metavar="N",
        help="refuse new connections while N are open (default %(default)s)",
    )
    render.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    render.set_defaults(run=print_envoy_config)


def print_envoy_config(args: argparse.Namespace) -> int:
    """Renders the configuration to stdout or --output."""
    from browserfarm.local_farm import ProjectNotFound, find_project_root

    try:
        root = find_project_root(Path.cwd())
    except ProjectNotFound as error:
        raise CliError(str(error)) from error
    ports = FarmPorts()
    local = {"auth": ports.auth, "storage": ports.storage, "scheduler": ports.scheduler}
    upstreams: dict[str, list[Endpoint]] = {name: [] for name in SERVICE_CLUSTERS}
    for name, endpoint in args.upstreams:
        upstreams.setdefault(name, []).append(endpoint)
    for name, endpoints in upstreams.items():
        if not endpoints:
            endpoints.append(Endpoint("127.0.0.1", local[name]))
    try:
        settings = EnvoySettings(
            listen_address=args.listen.host,
            listen_port=args.listen.port,
            admin_address=args.admin.host,
            admin_port=args.admin.port,
            descriptor_path=args.descriptor or root / "envoy" / "farm.binpb",
            upstreams=upstreams,
            tls_cert_path=args.tls_cert,
            tls_key_path=args.tls_key,
            upstream_cert_path=args.upstream_tls_cert,
            upstream_key_path=args.upstream_tls_key,
            upstream_ca_path=args.upstream_tls_ca,
            otlp=args.otlp,
            trace_flush_ms=args.trace_flush_ms,
            max_downstream_connections=args.max_connections,
            auth_check_port=args.auth_check_port,
        )
    except ValueError as error:  # TLS files given in part, a limit or a flush under 1
        raise CliError(str(error)) from error
    text = render_envoy_config(root / "envoy" / "envoy.yaml.j2", settings)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    return 0
