"""`farm up --observe`: the Prometheus configuration scrapes every process of the farm."""

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from farm_cli.launcher.autoscale import AutoscaleSettings
from farm_cli.launcher.config import FarmConfig, find_project_root
from farm_cli.launcher.infra import S3Credentials
from farm_cli.launcher.ports import FarmPorts
from farm_cli.launcher.prometheus import write_prometheus_config

ROOT = find_project_root(Path(__file__).parent)


def config(tmp_path: Path, agents: int = 2) -> FarmConfig:
    return FarmConfig(root=ROOT, home=tmp_path, ports=FarmPorts(), agents=agents, observe=True)


def written(farm: FarmConfig, tmp_path: Path) -> dict[str, object]:
    path = write_prometheus_config(farm, tmp_path / "prometheus.yml")
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def targets(loaded: dict[str, object]) -> dict[str, list[tuple[str, dict[str, str]]]]:
    jobs = loaded["scrape_configs"]
    assert isinstance(jobs, list)
    return {
        job["job_name"]: [
            (address, static.get("labels", {}))
            for static in job["static_configs"]
            for address in static["targets"]
        ]
        for job in jobs
    }


def test_every_service_agent_the_mcp_service_console_and_envoy_are_scraped(tmp_path: Path) -> None:
    loaded = written(config(tmp_path), tmp_path)
    assert targets(loaded) == {
        "envoy": [("127.0.0.1:9901", {})],
        "seaweedfs": [("127.0.0.1:7305", {})],
        "farm-auth": [("127.0.0.1:7201", {})],
        "farm-storage": [("127.0.0.1:7202", {})],
        "farm-scheduler": [("127.0.0.1:7203", {})],
        "farm-mcp": [("127.0.0.1:7204", {})],
        "farm-console": [("127.0.0.1:7205", {})],
        "farm-agent": [
            ("127.0.0.1:7210", {"agent": "agent-1"}),
            ("127.0.0.1:7211", {"agent": "agent-2"}),
        ],
    }
    jobs = loaded["scrape_configs"]
    assert isinstance(jobs, list)
    envoy = next(job for job in jobs if job["job_name"] == "envoy")
    assert envoy["metrics_path"] == "/stats/prometheus"
    assert loaded["rule_files"] == [str(ROOT / "deploy/prometheus/rules/*.rules.yml")]


def test_without_services_only_envoy_and_seaweedfs_are_scraped(tmp_path: Path) -> None:
    loaded = written(replace(config(tmp_path), start_services=False), tmp_path)
    assert list(targets(loaded)) == ["envoy", "seaweedfs"]


def test_seaweedfs_is_not_scraped_when_the_farm_uses_an_s3_of_its_own(tmp_path: Path) -> None:
    external = replace(
        config(tmp_path),
        s3_endpoint="http://127.0.0.1:9000",
        s3_credentials=S3Credentials("access", "secret"),
    )
    assert "seaweedfs" not in targets(written(external, tmp_path))


def test_moved_ports_are_followed(tmp_path: Path) -> None:
    ports = replace(
        FarmPorts(), scheduler_metrics=17203, agent_metrics_base=17210, seaweed_metrics=17305
    )
    loaded = written(replace(config(tmp_path, agents=1), ports=ports), tmp_path)
    assert targets(loaded)["seaweedfs"] == [("127.0.0.1:17305", {})]
    assert targets(loaded)["farm-scheduler"] == [("127.0.0.1:17203", {})]
    assert targets(loaded)["farm-agent"] == [("127.0.0.1:17210", {"agent": "agent-1"})]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_configuration_and_its_rules(tmp_path: Path) -> None:
    path = write_prometheus_config(config(tmp_path), tmp_path / "prometheus.yml")
    checked = subprocess.run(
        ["promtool", "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_agents_beyond_autoscalings_least_are_marked_autoscaled(tmp_path: Path) -> None:
    scaled = replace(config(tmp_path, agents=3), autoscale=AutoscaleSettings(1, 3))
    assert targets(written(scaled, tmp_path))["farm-agent"] == [
        ("127.0.0.1:7210", {"agent": "agent-1"}),
        ("127.0.0.1:7211", {"agent": "agent-2", "autoscaled": "true"}),
        ("127.0.0.1:7212", {"agent": "agent-3", "autoscaled": "true"}),
    ]
