"""LocalFarm with its services, played by stand-in packages (see conftest.stand_ins)."""

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from farm_cli.launcher.config import PRIVATE_NETWORKS, FarmConfig
from farm_cli.launcher.farm import LocalFarm
from farm_core.identity import IdentityVerifier
from farm_core.identity_keys import load_private_key, public_pem
from tests.helpers import assert_eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]


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
        service_env={"FARM_AGENT_ACK_WAIT_SECONDS": "5", "FARM_AUTH_PORT": "1"},
    )
    progress: list[str] = []
    with LocalFarm(config, report=progress.append) as farm:
        assert list(farm.processes) == [
            "nats", "seaweedfs", "auth", "storage", "scheduler", "mcp", "console", "agent-1",
            "agent-2", "envoy",
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
        public_key = public_pem(load_private_key(farm.identity_key))
        for name, env in envs.items():
            assert env["FARM_AGENT_ACK_WAIT_SECONDS"] == "5"
            assert env["FARM_HOME"] == str(config.home)
            assert env["NATS_URL"] == f"nats://127.0.0.1:{ports.nats}"
            assert env["FARM_IDENTITY_PUBLIC_KEY"] == public_key
            # Only auth may sign identities; agents carry a credential it signed.
            assert ("FARM_IDENTITY_KEY" in env) == (name == "auth")
        assert envs["agent-1"]["FARM_AGENT_CREDENTIAL"]
        # The MCP service (the real one) holds no signing key: auth renews its callers'
        # tokens for a credential of role mcp.
        mcp = farm.process("mcp").spec.env
        assert "FARM_IDENTITY_KEY" not in mcp
        assert IdentityVerifier(public_key).decode(mcp["FARM_MCP_CREDENTIAL"]).role == "mcp"
        assert mcp["FARM_MCP_AUTH_ADDRESS"] == f"127.0.0.1:{ports.auth}"
        # What the launcher wires wins over the extra environment.
        assert envs["auth"]["FARM_AUTH_PORT"] == str(ports.auth)
        assert envs["auth"]["FARM_AUTH_CHECK_PORT"] == str(ports.auth_check)
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
            refused = set(agent["FARM_AGENT_FARM_ADDRESSES"].split(","))
            for port in (ports.envoy, ports.envoy_admin, ports.auth, ports.scheduler, ports.nats):
                assert f"127.0.0.1:{port}" in refused
            assert f"127.0.0.1:{ports.agent(2)}" in refused
        assert "FARM_ADMIN_KEY" not in envs["agent-1"]
    order = sorted(names, key=lambda name: stopped_at(stand_ins, name))
    assert set(order[:2]) == {"agent-1", "agent-2"}
    assert order[2:] == ["scheduler", "storage", "auth"]
