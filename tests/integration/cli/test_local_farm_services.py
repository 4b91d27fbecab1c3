"""LocalFarm with its services, played by stand-in packages that shadow farm_auth & co.

Each stand-in serves gRPC health on the port the launcher gives it, writes down the
environment it was started with, and notes when SIGTERM reached it.
"""

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from farm_cli.launcher.config import PRIVATE_NETWORKS, FarmConfig
from farm_cli.launcher.farm import LocalFarm
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

STAND_IN = """
import json, os, signal, threading, time
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2_grpc

service = __package__.removeprefix("farm_")
name = os.environ.get("FARM_AGENT_ID", service)
record = Path(os.environ["STAND_IN_RECORD_DIR"])
(record / f"{name}.env.json").write_text(json.dumps(dict(os.environ)))
stopping = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stopping.set())
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
server.add_insecure_port("127.0.0.1:" + os.environ[f"FARM_{service.upper()}_PORT"])
server.start()
stopping.wait()
(record / f"{name}.stopped").write_text(str(time.monotonic_ns()))
server.stop(None)
"""


@pytest.fixture
def stand_ins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Packages farm_auth, farm_storage, farm_scheduler, farm_agent ahead of the real ones."""
    packages = tmp_path / "stand-ins"
    for service in ("auth", "storage", "scheduler", "agent"):
        package = packages / f"farm_{service}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "__main__.py").write_text(STAND_IN)
    record = tmp_path / "record"
    record.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(packages))
    monkeypatch.setenv("STAND_IN_RECORD_DIR", str(record))
    monkeypatch.delenv("FARM_ADMIN_KEY", raising=False)
    return record


def started_with(record: Path, name: str) -> dict[str, str]:
    env: dict[str, Any] = json.loads((record / f"{name}.env.json").read_text())
    return env


def stopped_at(record: Path, name: str) -> int:
    return int((record / f"{name}.stopped").read_text())


async def test_services_and_agents_start_with_the_farms_settings_and_stop_in_reverse(
    infra_config: FarmConfig, stand_ins: Path
) -> None:
    config = replace(
        infra_config,
        start_services=True,
        agents=2,
        agent_allow=",".join(PRIVATE_NETWORKS),
        service_timeout=60,
    )
    progress: list[str] = []
    with LocalFarm(config, report=progress.append) as farm:
        assert list(farm.processes) == [
            "nats", "seaweedfs", "auth", "storage", "scheduler", "agent-1", "agent-2", "envoy",
        ]  # fmt: skip
        assert {line.split()[0] for line in progress if " ready (" in line} == set(farm.processes)
        # Every service cluster has a healthy host, so the edge reports healthy.
        await assert_eventually(
            lambda: httpx.get(f"{farm.envoy_url}/healthz", timeout=5).status_code == 200,
            within=20,
        )
        ports = config.ports
        names = ["auth", "storage", "scheduler", "agent-1", "agent-2"]
        envs = {name: started_with(stand_ins, name) for name in names}
        for env in envs.values():
            assert env["FARM_HOME"] == str(config.home)
            assert env["NATS_URL"] == f"nats://127.0.0.1:{ports.nats}"
            assert env["FARM_IDENTITY_SECRET"] == farm.identity_secret
        assert envs["auth"]["FARM_ADMIN_KEY"] == farm.admin_key
        assert envs["auth"]["FARM_AUTH_METRICS_PORT"] == str(ports.auth_metrics)
        assert envs["storage"]["S3_ENDPOINT"] == farm.s3.endpoint
        assert envs["storage"]["S3_SECRET_KEY"] == farm.s3.credentials.secret_key
        assert envs["storage"]["S3_BUCKET"] == "farm-artifacts"
        assert envs["scheduler"]["FARM_SCHEDULER_PORT"] == str(ports.scheduler)
        for index in (1, 2):
            agent = envs[f"agent-{index}"]
            assert agent["FARM_AGENT_PORT"] == str(ports.agent(index))
            assert agent["FARM_AGENT_METRICS_PORT"] == str(ports.agent_metrics(index))
            assert agent["FARM_AGENT_STORAGE_ADDRESS"] == f"127.0.0.1:{ports.storage}"
            assert agent["FARM_AGENT_ALLOW"] == config.agent_allow
        assert "FARM_ADMIN_KEY" not in envs["agent-1"]
    order = sorted(names, key=lambda name: stopped_at(stand_ins, name))
    assert set(order[:2]) == {"agent-1", "agent-2"}
    assert order[2:] == ["scheduler", "storage", "auth"]
