"""Renders envoy/envoy.yaml.j2 for the tests, picks out the parts they look at, and has
Envoy validate a rendered config."""

import subprocess
from pathlib import Path
from typing import Any

import yaml

from farm_cli.launcher.config import find_project_root
from farm_cli.launcher.envoy import Endpoint, EnvoySettings, render_envoy_config
from farm_cli.launcher.infra import binary

ROOT = find_project_root(Path(__file__).parent)
TEMPLATE = ROOT / "envoy" / "envoy.yaml.j2"
DESCRIPTOR = ROOT / "envoy" / "farm.binpb"
COMPOSE_CONFIG = ROOT / "envoy" / "compose" / "envoy.yaml"
COMPOSE_RENDER_ARGS = [
    "envoy-config",
    "--listen",
    "0.0.0.0:8080",
    "--descriptor",
    "/app/envoy/farm.binpb",
    "--upstream",
    "auth=auth:7101",
    "--upstream",
    "storage=storage:7102",
    "--upstream",
    "scheduler=scheduler:7103",
    "--upstream",
    "mcp=mcp:7104",
    "--upstream",
    "console=console:7105",
    "--otlp",
    "jaeger:4317",
]


def settings(**changes: Any) -> EnvoySettings:
    values: dict[str, Any] = {
        "listen_port": 18080,
        "admin_port": 19901,
        "descriptor_path": DESCRIPTOR,
        "upstreams": {
            "auth": [Endpoint("127.0.0.1", 17101)],
            "storage": [Endpoint("127.0.0.1", 17102)],
            "scheduler": [Endpoint("127.0.0.1", 17103), Endpoint("127.0.0.2", 17104)],
        },
    }
    values.update(changes)
    return EnvoySettings(**values)


def rendered(**changes: Any) -> dict[str, Any]:
    loaded = yaml.safe_load(render_envoy_config(TEMPLATE, settings(**changes)))
    assert isinstance(loaded, dict)
    return loaded


def filter_chain(config: dict[str, Any]) -> dict[str, Any]:
    (listener,) = config["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    assert isinstance(chain, dict)
    return chain


def connection_manager(config: dict[str, Any]) -> dict[str, Any]:
    (manager,) = filter_chain(config)["filters"]
    typed: dict[str, Any] = manager["typed_config"]
    return typed


def clusters(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services' clusters (not the agents' session endpoints)."""
    return {c["name"]: c for c in config["static_resources"]["clusters"] if c["name"] != "sessions"}


def sessions_cluster(config: dict[str, Any]) -> dict[str, Any]:
    (cluster,) = [c for c in config["static_resources"]["clusters"] if c["name"] == "sessions"]
    assert isinstance(cluster, dict)
    return cluster


def routes(config: dict[str, Any]) -> list[dict[str, Any]]:
    (host,) = connection_manager(config)["route_config"]["virtual_hosts"]
    found: list[dict[str, Any]] = host["routes"]
    return found


def envoy_validate(path: Path) -> subprocess.CompletedProcess[str]:
    """Envoy's own check of the config at `path` (`envoy --mode validate`)."""
    return subprocess.run(
        [binary("envoy"), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
