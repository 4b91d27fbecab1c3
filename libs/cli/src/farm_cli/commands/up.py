"""`farm up`: run the whole farm on this machine until Ctrl-C or SIGTERM.

While it runs, a process that ends without the launcher asking (a crash, a signal, a
SIGTERM by hand) is started again (1 s, 2 s, 4 s … up to 30 s apart) and the console
says so; an agent that exits 0 was drained and stays down.
With `--agents MIN..MAX` the launcher also starts and drains agents on queue wait and
CPU (launcher/scaler.py) and says why.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from farm_cli.commands.ranges import percent, positive_number
from farm_cli.console import CliError, UsageError
from farm_cli.launcher.autoscale import AutoscaleSettings, parse_agents
from farm_cli.launcher.ports import (
    MAX_AGENTS,
    SUGGESTED_PORT_OFFSET,
    FarmPorts,
    browser_refused_warning,
    check_port_offset,
    port_offset_range,
)
from farm_cli.launcher.processes import StartupError

if TYPE_CHECKING:
    from farm_cli.launcher.farm import LocalFarm
    from farm_cli.launcher.tls import TlsFiles


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `up`."""
    up = commands.add_parser(
        "up",
        help="start the whole farm on this machine (Ctrl-C stops it)",
        description="Starts NATS and SeaweedFS (unless NATS_URL / S3_ENDPOINT are set), the "
        "auth, storage and scheduler services, the agents and Envoy; state under FARM_HOME "
        "(default: .farm in the checkout). A process that ends without the launcher asking "
        "(a crash, a signal, a SIGTERM by hand) is restarted with backoff (1 s, 2 s, 4 s ... "
        "up to 30 s); an agent drained on purpose (exit 0) is not. Every "
        "port can be moved with FARM_<WHAT>_PORT, e.g. FARM_NATS_PORT, FARM_AUTH_PORT, "
        "FARM_SEAWEED_S3_PORT, FARM_AGENT_PORT (agent 1; the others follow it); "
        "--port-offset moves them all at once, for a second farm on one machine.",
    )
    up.add_argument(
        "--agents",
        type=agents_option,
        default="1",
        help="browser agents to run (default 1), or MIN..MAX (e.g. 1..3) to start and drain "
        "them on queue wait and CPU",
    )
    scale = AutoscaleSettings(1, 1)
    up.add_argument(
        "--scale-wait",
        type=positive_number,
        metavar="SECONDS",
        help="with MIN..MAX: start an agent when a task has waited longer than this "
        f"(default {scale.target_wait_seconds:g})",
    )
    up.add_argument(
        "--scale-cpu",
        type=percent,
        metavar="PERCENT",
        help="with MIN..MAX: start an agent when tasks wait and the machine's CPU is above "
        f"this (default {scale.cpu_percent:g})",
    )
    up.add_argument(
        "--scale-idle",
        type=positive_number,
        metavar="SECONDS",
        help="with MIN..MAX: drain an agent that has run nothing this long "
        f"(default {scale.idle_seconds:g})",
    )
    up.add_argument(
        "--allow-private",
        action="store_true",
        help="let agents open loopback and private addresses (local test pages)",
    )
    offsets = port_offset_range()
    example = SUGGESTED_PORT_OFFSET
    up.add_argument(
        "--port-offset",
        type=port_offset,
        default=0,
        metavar="N",
        help=f"move every port of the farm by N, to run a second farm (with its own "
        f"FARM_HOME) beside one on the default ports: e.g. {example} puts Envoy on "
        f"{FarmPorts.envoy + example}, auth on {FarmPorts.auth + example}, NATS on "
        f"{FarmPorts.nats + example}; {offsets.start}..{offsets.stop - 1}, and none of its "
        "ports may be a default one. FARM_<WHAT>_PORT, --envoy-port and --envoy-admin-port "
        "still set their port exactly",
    )
    up.add_argument("--envoy-port", type=int, help=f"HTTP/gRPC port (default {FarmPorts.envoy})")
    up.add_argument(
        "--envoy-admin-port", type=int, help=f"Envoy's admin port (default {FarmPorts.envoy_admin})"
    )
    up.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS and gRPC over TLS only, with a certificate from a local CA made "
        "once under FARM_HOME/tls (clients trust its ca.pem)",
    )
    up.add_argument(
        "--tls-cert",
        type=Path,
        help="serve TLS with this certificate chain (PEM) instead; env FARM_ENVOY_TLS_CERT",
    )
    up.add_argument(
        "--tls-key", type=Path, help="the key of --tls-cert (PEM); env FARM_ENVOY_TLS_KEY"
    )
    up.add_argument(
        "--observe",
        action="store_true",
        help=f"also run Prometheus on 127.0.0.1:{FarmPorts.prometheus} (FARM_PROMETHEUS_PORT) "
        "scraping every process, with the farm's alert rules (make observe-deps installs it)",
    )
    up.add_argument(
        "--traces",
        action="store_true",
        help=f"also run a trace sink on 127.0.0.1:{FarmPorts.traces} (FARM_TRACES_PORT) that "
        "every process and Envoy send their spans to (OTLP/gRPC), kept under FARM_HOME/traces "
        "for `farm task trace ID`; without it OTEL_EXPORTER_OTLP_ENDPOINT, if set, gets them",
    )
    up.add_argument(
        "--infra-only",
        action="store_true",
        help="start only NATS, SeaweedFS and Envoy (to run the services by hand)",
    )
    up.set_defaults(run=run_up)


def port_offset(text: str) -> int:
    """The `--port-offset` value: a whole number that keeps every port in range."""
    try:
        offset = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    try:
        check_port_offset(offset)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return offset


def _say(line: str) -> None:
    print(line, flush=True)


def banner(farm: LocalFarm) -> str:
    """What `farm up` prints once the farm is up: the URL, the admin key, a curl to try."""
    url = farm.envoy_url
    key = farm.admin_key
    tls = tls_lines(farm.tls_files, farm.internal_tls_files)
    ca = farm.tls_files.ca if farm.tls_files else None
    curl = f"curl -s --cacert {ca}" if ca else "curl -s"
    if not farm.config.start_services:
        return "\n".join(
            [
                "",
                f"infrastructure is up (no services): Envoy at {url}",
                *([f"  prometheus: {farm.prometheus_url}"] if farm.prometheus_url else []),
                *tls,
                f"  NATS_URL={farm.nats_url}",
                *nats_login_lines(farm.config.nats_url is None, farm.home),
                f"  S3_ENDPOINT={farm.s3.endpoint} (key pair in {farm.home}/seaweedfs)",
                f"  FARM_HOME={farm.home}",
                "Ctrl-C stops it.",
                "",
            ]
        )
    return "\n".join(
        [
            "",
            f"browserfarm is up at {url}",
            *tls,
            f"  admin key: {key}",
            f"             (kept in {farm.admin_key_path}, mode 0600; shown only here)",
            "  try:",
            f"    {curl} -H 'authorization: Bearer {key}' {url}/v1/whoami",
            f"    {curl} -H 'authorization: Bearer {key}' "
            f'-d \'{{"url": "https://example.com", "screenshot": {{}}}}\' {url}/v1/tasks:run',
            f"  logs: {farm.log_dir}",
            *([f"  prometheus: {farm.prometheus_url}"] if farm.prometheus_url else []),
            *trace_lines(farm),
            *([f"  agents: {scaling.describe()}"] if (scaling := farm.config.autoscale) else []),
            *cli_lines(farm.home),
            "A process that crashes or is stopped by hand is restarted "
            "(1 s, 2 s, 4 s ... up to 30 s apart).",
            "Ctrl-C stops the farm.",
            "",
        ]
    )


def nats_login_lines(embedded_nats: bool, home: Path) -> list[str]:
    """The banner's lines on logging in to the embedded NATS, which refuses anonymous clients."""
    from farm_cli.launcher.nats_users import passwords_path, stored_users

    users = stored_users(home) if embedded_nats else []
    if not users:
        return []
    return [
        f"    users {', '.join(users)}: a service started by hand needs NATS_USER and its",
        f"    NATS_PASSWORD from {passwords_path(home)}",
    ]


def cli_lines(home: Path) -> list[str]:
    """The banner's line on the `farm` command, which finds the farm through FARM_HOME."""
    return [f"  status: farm status (in this checkout, or anywhere with FARM_HOME={home})"]


def trace_lines(farm: LocalFarm) -> list[str]:
    """The banner's line on traces: where spans go, and how to see a task's."""
    if farm.traces_url is not None:
        return [f"  traces: {farm.traces_url} -> {farm.config.traces_folder} (farm task trace ID)"]
    if farm.config.trace_endpoint is not None:
        return [f"  traces: sent to {farm.config.trace_endpoint}"]
    return []


def tls_lines(files: TlsFiles | None, internal: TlsFiles | None = None) -> list[str]:
    """The banner's lines on TLS: which certificates, and what clients must trust."""
    if files is None:
        return []
    if files.ca is None:
        lines = [f"  TLS certificate: {files.cert}"]
    else:
        lines = [
            f"  TLS: certificate from the local CA {files.ca}",
            f"       (curl --cacert, FARM_CA_FILE={files.ca} for the farm CLI)",
        ]
    if internal is not None:
        lines.append(f"  services: mutual TLS with {internal.cert}")
    return lines


@dataclass(frozen=True)
class AgentsOption:
    """`--agents` parsed: a fixed count (least == most) or a MIN..MAX range to scale in."""

    least: int
    most: int
    scaled: bool


def agents_option(text: str) -> AgentsOption:
    """An argparse type: `--agents` parsed, once it is a count or a MIN..MAX the farm runs."""
    try:
        least, most = parse_agents(text)
        scaled = ".." in text
        if scaled:
            AutoscaleSettings(least, most)
        if most > MAX_AGENTS:
            raise ValueError(f"at most {MAX_AGENTS} agents, got {most}")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    return AgentsOption(least, most, scaled)


def autoscale_settings(args: argparse.Namespace) -> AutoscaleSettings | None:
    """The scaling settings of `--agents MIN..MAX` and `--scale-*`; None for a fixed count."""
    agents: AgentsOption = args.agents
    chosen = {
        name: value
        for name, value in (
            ("target_wait_seconds", args.scale_wait),
            ("cpu_percent", args.scale_cpu),
            ("idle_seconds", args.scale_idle),
        )
        if value is not None
    }
    if not agents.scaled:
        if chosen:
            raise UsageError("--scale-wait, --scale-cpu and --scale-idle need --agents MIN..MAX")
        return None
    return AutoscaleSettings(agents.least, agents.most, **chosen)


def chosen_ports(args: argparse.Namespace, environ: Mapping[str, str]) -> FarmPorts:
    """The farm's ports: the --envoy-*-port flags, FARM_<WHAT>_PORT, the defaults + offset."""
    ports = FarmPorts.from_environment(environ, offset=args.port_offset)
    if args.envoy_port is not None:
        ports = replace(ports, envoy=args.envoy_port)
    if args.envoy_admin_port is not None:
        ports = replace(ports, envoy_admin=args.envoy_admin_port)
    return ports


def run_up(args: argparse.Namespace) -> int:
    """Starts the farm, watches it until a signal, then stops it."""
    # The launcher is imported only to run it: `farm up --help` needs none of it.
    from farm_cli.launcher.config import FarmConfig, OptionsConflict, ProjectNotFound
    from farm_cli.launcher.farm import LocalFarm
    from farm_cli.launcher.lock import FarmAlreadyRunning

    try:
        ports = chosen_ports(args, os.environ)
        autoscale = autoscale_settings(args)
        config = FarmConfig.from_environment(
            agents=args.agents.most,
            autoscale=autoscale,
            allow_private=args.allow_private,
            ports=ports,
            start_services=not args.infra_only,
            tls=args.tls,
            tls_cert=args.tls_cert.resolve() if args.tls_cert else None,
            tls_key=args.tls_key.resolve() if args.tls_key else None,
            observe=args.observe,
            traces=args.traces,
        )
    except OptionsConflict as error:
        raise UsageError(str(error)) from error
    except (ProjectNotFound, ValueError) as error:
        raise CliError(str(error)) from error
    farm = LocalFarm(config, report=_say)
    try:
        # Before anything is said about this farm: another may hold FARM_HOME already.
        farm.claim_home()
    except FarmAlreadyRunning as error:
        raise CliError(str(error)) from error
    if args.port_offset:
        _say(f"every port moved by {args.port_offset:+d}: the farm will be at {config.envoy_url}")
    refused = browser_refused_warning(ports, observe=args.observe)
    if refused:
        print(refused, file=sys.stderr, flush=True)

    def request_stop(signum: int, frame: FrameType | None) -> None:
        farm.request_stop()

    previous = {
        signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        return _run(farm)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(farm: LocalFarm) -> int:
    from farm_cli.launcher.launched import FarmInterrupted
    from farm_cli.launcher.lock import FarmAlreadyRunning

    try:
        farm.start()
    except FarmAlreadyRunning as error:
        raise CliError(str(error)) from error
    except FarmInterrupted:
        _say("stopped before the farm was up")
        return 1
    except (StartupError, OSError) as error:
        print(f"error: the farm did not start: {error}", file=sys.stderr)
        return 1
    _say(banner(farm))
    try:
        farm.supervise()
        _say("stopping the farm")
    finally:
        farm.stop()
    _say("the farm has stopped")
    return 0
