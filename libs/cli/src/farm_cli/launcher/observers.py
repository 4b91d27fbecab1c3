"""The farm's own observers, launched by LocalFarm: the local trace sink and Prometheus."""

import functools
from pathlib import Path

from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.health import grpc_serving
from farm_cli.launcher.launched import LaunchedProcesses
from farm_cli.launcher.processes import ManagedProcess
from farm_cli.launcher.prometheus import prometheus_ready, prometheus_spec, write_prometheus_config
from farm_cli.launcher.services import trace_sink_launch
from farm_cli.launcher.supervisor import Role

PROMETHEUS_TIMEOUT = 30.0
TRACE_SINK_TIMEOUT = 30.0


def launch_trace_sink(launched: LaunchedProcesses, config: FarmConfig) -> ManagedProcess:
    """The local trace sink; it speaks plaintext gRPC on loopback, TLS or not."""
    launch = trace_sink_launch(config)
    ready = functools.partial(grpc_serving, launch.address, None)
    return launched.launch(launch.spec, ready, TRACE_SINK_TIMEOUT, Role.INFRASTRUCTURE)


def launch_prometheus(
    launched: LaunchedProcesses, config: FarmConfig, home: Path
) -> ManagedProcess:
    """Prometheus scraping every process, with the farm's alert rules."""
    folder = home / "prometheus"
    config_file = write_prometheus_config(config, folder / "prometheus.yml")
    port = config.ports.prometheus
    spec = prometheus_spec(config_file, folder / "data", port)
    ready = functools.partial(prometheus_ready, port)
    return launched.launch(spec, ready, PROMETHEUS_TIMEOUT, Role.INFRASTRUCTURE)
