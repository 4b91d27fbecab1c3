"""compose.yaml's structure (no Docker engine here: the file is checked, not run)."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from farm_cli.launcher.config import find_project_root
from farm_core.settings import FarmSettings

ROOT = find_project_root(Path(__file__).parent)
FARM_SERVICES = {"auth", "storage", "scheduler", "agent", "mcp", "console"}
# What the farm's services read from the environment (besides FarmSettings' own names).
SETTINGS_NAMES = {
    "FARM_AUTH_PORT", "FARM_AUTH_METRICS_PORT", "FARM_ADMIN_KEY", "DATABASE_URL",
    "FARM_STORAGE_PORT", "FARM_STORAGE_METRICS_PORT", "FARM_STORAGE_AUTH_ADDRESS",
    "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET",
    "FARM_SCHEDULER_PORT", "FARM_SCHEDULER_METRICS_PORT",
    "FARM_AGENT_PORT", "FARM_AGENT_METRICS_PORT", "FARM_AGENT_ID",
    "FARM_AGENT_STORAGE_ADDRESS", "FARM_AGENT_ALLOW", "FARM_AGENT_CONCURRENCY",
    "FARM_MCP_PORT", "FARM_MCP_METRICS_PORT", "FARM_MCP_SCHEDULER_ADDRESS",
    "FARM_MCP_STORAGE_ADDRESS",
    "FARM_CONSOLE_PORT", "FARM_CONSOLE_METRICS_PORT", "FARM_CONSOLE_FARM_ADDRESS",
    "FARM_CONSOLE_COOKIE_SECURE",
}  # fmt: skip


def shared_settings_names() -> set[str]:
    names = set()
    for field in FarmSettings.model_fields.values():
        alias = field.validation_alias
        names.update(str(choice) for choice in getattr(alias, "choices", []))
    return names


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    assert isinstance(env, dict)
    return env


def test_compose_runs_the_whole_farm(services: dict[str, dict[str, Any]]) -> None:
    assert {"nats", "postgres", "envoy", *FARM_SERVICES} <= set(services)
    assert {"minio", "seaweedfs"} & set(services)


def test_every_service_has_an_image_or_a_build(services: dict[str, dict[str, Any]]) -> None:
    missing = [name for name, s in services.items() if not ("image" in s or "build" in s)]
    assert not missing


def test_every_dependency_is_a_service(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown {dependency}"


def test_farm_services_read_only_real_settings(services: dict[str, dict[str, Any]]) -> None:
    known = SETTINGS_NAMES | shared_settings_names()
    assert {"FARM_HOME", "NATS_URL", "FARM_IDENTITY_SECRET", "FARM_BIND_HOST"} <= known
    for name in FARM_SERVICES:
        unknown = set(environment(services[name])) - known
        assert not unknown, f"{name} sets variables no service reads: {sorted(unknown)}"


def test_farm_services_run_their_package_and_share_nats_and_the_secret(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in FARM_SERVICES:
        service = services[name]
        assert service["command"][-2:] == ["-m", f"farm_{name}"]
        env = environment(service)
        assert env["NATS_URL"] == "nats://nats:4222"
        assert env["FARM_IDENTITY_SECRET"].startswith("${FARM_IDENTITY_SECRET")
        assert env["FARM_BIND_HOST"] == "0.0.0.0"


def test_agents_upload_to_the_storage_service(services: dict[str, dict[str, Any]]) -> None:
    agent = services["agent"]
    assert environment(agent)["FARM_AGENT_STORAGE_ADDRESS"] == "storage:7102"
    assert agent["deploy"]["replicas"] >= 2
    assert "FARM_AGENT_ID" not in environment(agent), "replicas would share one id"


def published_host_ports(service: dict[str, Any]) -> list[str]:
    ports = []
    for entry in service.get("ports", []):
        parts = str(entry).split(":")
        ports.append(":".join(parts[:-1]) if len(parts) > 1 else parts[0])
    return ports


def test_published_ports_do_not_collide(services: dict[str, dict[str, Any]]) -> None:
    published = [port for s in services.values() for port in published_host_ports(s)]
    assert published, "Envoy must be published"
    assert len(published) == len(set(published))
    assert all(not port.endswith(taken) for port in published for taken in ("5432", "4222"))


def test_envoy_mounts_a_config_that_exists(services: dict[str, dict[str, Any]]) -> None:
    mounts = [str(v).split(":") for v in services["envoy"].get("volumes", [])]
    (config,) = [source for source, target, *_ in mounts if target.endswith("envoy.yaml")]
    assert (ROOT / config).is_file()
    assert services["envoy"]["command"][:3] == ["envoy", "-c", "/etc/farm/envoy.yaml"]
    upstreams = {"auth", "storage", "scheduler"}
    assert upstreams <= set(services["envoy"]["depends_on"])


def test_the_dockerfile_builds_the_protos_and_has_chromium() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "FROM python:3.11-slim" in dockerfile
    assert "uv sync --frozen" in dockerfile
    assert "make protos" in dockerfile
    assert "chromium" in dockerfile
