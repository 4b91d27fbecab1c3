"""`farm up --agents 1..2`: a burst of tasks starts a second agent; once the burst is
over, one agent drains and stops, and no task is lost or run twice.

The farm is the real launcher's (services, Chromium agents, Envoy; the session's
SeaweedFS), supervised and scaled in the background as `farm up` does, with short
thresholds: a task that waits a second starts an agent, an agent idle two seconds is
drained.
"""

import secrets
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from farm_cli.launcher.autoscale import AutoscaleSettings
from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.supervisor import Phase
from tests.conftest import S3Server
from tests.e2e.conftest import FINAL_STATES, fresh
from tests.farms import whole_farm_config
from tests.helpers import assert_eventually
from tests.pages import Site

# The launcher's scaler reads JetStream and the agents; the tasks' rows are any task's.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.database_neutral]

SCALING = AutoscaleSettings(
    min_agents=1,
    max_agents=2,
    target_wait_seconds=1,
    # The queue's wait alone decides here: the machine's CPU varies with what else runs.
    cpu_percent=100,
    idle_seconds=2,
    cooldown_seconds=1,
    interval_seconds=0.5,
)
ENV = {
    "FARM_AGENT_CONCURRENCY": "2",
    # Every test page is on 127.0.0.1: per-host politeness must not be what limits the burst.
    "FARM_AGENT_HOST_MAX_CONCURRENCY": "16",
    "FARM_AGENT_HOST_MAX_RATE": "100",
    "FARM_GRACE_SECONDS": "5",
}
BURST = 6


class Console(list[str]):
    """What the farm reports, line by line."""

    def has(self, text: str) -> bool:
        return any(text in line for line in self)


@pytest.fixture(scope="module")
def console() -> Console:
    return Console()


@pytest.fixture(scope="module")
def scaled_farm(
    tmp_path_factory: pytest.TempPathFactory, seaweedfs: S3Server, console: Console
) -> Iterator[LocalFarm]:
    """One agent that may grow to two, supervised and scaled in the background."""
    config = replace(
        whole_farm_config(tmp_path_factory.mktemp("scaled"), agents=SCALING.max_agents),
        autoscale=SCALING,
        service_env=ENV,
        s3_endpoint=seaweedfs.endpoint,
        s3_credentials=seaweedfs.credentials,
        s3_bucket=seaweedfs.bucket,
    )
    with LocalFarm(config, report=console.append) as farm:
        farm.start_supervisor(interval=0.1)
        yield farm


async def listed(http: httpx.AsyncClient, label: str) -> list[dict[str, Any]]:
    response = await http.get("/v1/tasks", params={"label": f"burst={label}", "pageSize": "100"})
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json().get("tasks", [])
    return tasks


async def test_a_burst_grows_the_agents_then_they_shrink_back_with_no_task_lost(
    scaled_farm: LocalFarm, console: Console, site: Site
) -> None:
    farm = scaled_farm
    assert farm.phase("agent-1") is Phase.UP
    assert "agent-2" not in farm.processes
    label = secrets.token_hex(6)
    # Each page answers once three are open at once (after 40 s at the latest): more
    # than agent-1's two places, so only a second agent makes it quick.
    url = site.url(f"/count/{label}?ms=40000&meet=3")
    spec = fresh({"url": url, "content": {}, "timeoutMs": 60000, "labels": {"burst": label}})
    headers = {"authorization": f"Bearer {farm.admin_key}"}
    async with httpx.AsyncClient(base_url=farm.envoy_url, headers=headers, timeout=30) as http:
        for _ in range(BURST):
            response = await http.post("/v1/tasks", json=spec)
            assert response.status_code == 200, response.text

        await assert_eventually(
            lambda: site.most_in_flight.get(label, 0) >= 3,
            within=45,
            message=lambda: "\n".join(console),
        )
        assert console.has("agent-2 started: oldest task waited")
        # The agent pulls work as soon as it is connected; the supervisor reports it
        # ready at its next health probe, which may come after the pages opened.
        await assert_eventually(
            lambda: console.has("agent-2 ready"), within=15, message=lambda: "\n".join(console)
        )

        async def all_final() -> bool:
            return all(task["status"] in FINAL_STATES for task in await listed(http, label))

        await assert_eventually(all_final, within=60)
        tasks = await listed(http, label)
        assert len(tasks) == BURST
        assert {task["status"] for task in tasks} == {"TASK_STATUS_SUCCEEDED"}
        assert [task["attempts"] for task in tasks] == [1] * BURST
        assert {task["agentId"] for task in tasks} == {"agent-1", "agent-2"}

    # The burst is over: agent-2 drains and stays down; agent-1 stays as the least,
    # whichever ran out of work first (scraped without autoscaled="true", it must not
    # be down for FarmAgentDown).
    def one_ended() -> bool:
        return [farm.phase(name) for name in ("agent-1", "agent-2")].count(Phase.ENDED) == 1

    await assert_eventually(one_ended, within=30, message=lambda: "\n".join(console))
    assert console.has("agent-2 draining: idle")
    assert console.has("agent-2 exited after draining (exit code 0)")
    assert farm.phase("agent-1") is Phase.UP
