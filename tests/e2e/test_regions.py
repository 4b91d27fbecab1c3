"""Region routing on a whole farm: agents in two regions, one region busy, then down (issue 13).

One farm for the module: agent-1 in eu-central (one place), agent-2 in us-east, and a
region rule that sends the test pages' host (127.0.0.1) to eu-central first, with a
fallback wait of 3 s. Every agent event is recorded from NATS, so a task that ran
twice would show two RUNNING events.
"""

import asyncio
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import nats
import pytest
from nats.aio.msg import Msg

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_cli.launcher.farm import LocalFarm
from farm_core.queue import TASK_EVENT_SUBJECTS, TASK_STREAM
from tests.conftest import S3Server
from tests.e2e.conftest import FINAL_STATES, agent_metric, fresh
from tests.farms import whole_farm_config
from tests.helpers import assert_eventually, eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EU, US = "eu-central", "us-east"
REGION_ENV = {
    "FARM_SCHEDULER_REGION_ROUTES": f"127.0.0.1={EU}",
    "FARM_SCHEDULER_REGION_FALLBACK_SECONDS": "3",
    "FARM_SCHEDULER_REGION_FALLBACK_INTERVAL_SECONDS": "0.2",
    "FARM_SCHEDULER_WATCH_POLL_SECONDS": "1",
    "FARM_AGENT_HEARTBEAT_SECONDS": "0.5",
    "FARM_AGENT_HOST_MAX_CONCURRENCY": "16",
    "FARM_AGENT_HOST_MAX_RATE": "100",
    "FARM_GRACE_SECONDS": "2",
}


@pytest.fixture(scope="module")
def region_farm(
    tmp_path_factory: pytest.TempPathFactory, seaweedfs: S3Server
) -> Iterator[LocalFarm]:
    """Two agents in two regions: agent-1 in eu-central with one place, agent-2 in us-east.

    Artifacts go to the session's SeaweedFS.
    """
    config = replace(
        whole_farm_config(tmp_path_factory.mktemp("regions")),
        service_env=REGION_ENV,
        s3_endpoint=seaweedfs.endpoint,
        s3_credentials=seaweedfs.credentials,
        s3_bucket=seaweedfs.bucket,
        agent_env=(
            {"FARM_AGENT_REGION": EU, "FARM_AGENT_CONCURRENCY": "1"},
            {"FARM_AGENT_REGION": US, "FARM_AGENT_CONCURRENCY": "2"},
        ),
    )
    with LocalFarm(config) as farm:
        # Until the scheduler's look at the fleet sees a region, tasks preferring it go to
        # any region; its view lags the agents' first heartbeats by up to an interval.
        scheduler_log = farm.log_dir / "scheduler.log"
        eventually(
            lambda: f"regions with a live agent: {EU}, {US}" in scheduler_log.read_text(),
            within=30,
            message="the scheduler never saw both regions' agents",
        )
        yield farm


@pytest.fixture
async def http(region_farm: LocalFarm) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {region_farm.admin_key}"}
    async with httpx.AsyncClient(
        base_url=region_farm.envoy_url, headers=headers, timeout=30
    ) as client:
        yield client


@pytest.fixture
async def runs(region_farm: LocalFarm) -> AsyncIterator[Counter[str]]:
    """How many RUNNING events each task's agents sent while the test ran."""
    started: Counter[str] = Counter()

    async def record(message: Msg) -> None:
        event = queue_pb2.AgentEvent.FromString(message.data)
        if event.status == tasks_pb2.TASK_STATUS_RUNNING:
            started[event.task_id] += 1

    client = await nats.connect(**region_farm.nats_access("scheduler").connect_options())
    await client.subscribe(TASK_EVENT_SUBJECTS, cb=record)
    try:
        yield started
    finally:
        await client.close()


async def held_messages(farm: LocalFarm, subjects: str) -> dict[str, int]:
    """The messages the task stream holds on `subjects`, by subject."""
    client = await nats.connect(**farm.nats_access("scheduler").connect_options())
    try:
        info = await client.jetstream().stream_info(TASK_STREAM, subjects_filter=subjects)
    finally:
        await client.close()
    return dict(info.state.subjects or {})


async def create(http: httpx.AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    response = await http.post("/v1/tasks", json=fresh({"url": url, "content": {}, **fields}))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def get(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await http.get(f"/v1/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def final(
    http: httpx.AsyncClient, ids: list[str], within: float = 30
) -> list[dict[str, Any]]:
    """The tasks once every one of them is final."""
    found: list[dict[str, Any]] = []

    async def all_final() -> bool:
        nonlocal found
        found = [await get(http, task_id) for task_id in ids]
        return all(task["status"] in FINAL_STATES for task in found)

    await assert_eventually(all_final, within=within, interval=0.2, message=lambda: str(found))
    return found


async def status_is(http: httpx.AsyncClient, task_id: str, status: str) -> None:
    async def reached() -> bool:
        reached_status: bool = (await get(http, task_id))["status"] == status
        return reached_status

    await assert_eventually(reached, within=30, interval=0.1, message=f"{task_id} not {status}")


def ran_once_on(tasks: list[dict[str, Any]], runs: Counter[str], agent: str, region: str) -> None:
    for task in tasks:
        assert task["status"] == "TASK_STATUS_SUCCEEDED", task
        assert task["agentId"] == agent, task
        assert task["routedRegion"] == region, task
        assert task["attempts"] == 1, task
        assert runs[task["id"]] == 1, f"task {task['id']} started {runs[task['id']]} times"


async def test_routed_and_strict_tasks_run_in_their_region(
    region_farm: LocalFarm, http: httpx.AsyncClient, site: Site, runs: Counter[str]
) -> None:
    routed = await create(http, site.url("/"))
    assert routed["routedRegion"] == EU
    strict = await create(http, site.url("/"), region=US)
    assert strict["routedRegion"] == US
    done = await final(http, [routed["id"], strict["id"]])
    ran_once_on(done[:1], runs, "agent-1", EU)
    ran_once_on(done[1:], runs, "agent-2", US)


async def test_routed_tasks_fall_back_when_their_region_is_busy_then_down(
    region_farm: LocalFarm, http: httpx.AsyncClient, site: Site, runs: Counter[str]
) -> None:
    gate = f"regions-{secrets.token_hex(4)}"
    # eu-central's one place is taken; a task strict to eu-central waits behind it.
    blocker = await create(http, site.url(f"/gate/{gate}"))
    await status_is(http, blocker["id"], "TASK_STATUS_RUNNING")
    strict = await create(http, site.url("/"), region=EU)
    waiting = [await create(http, site.url("/")) for _ in range(4)]
    assert {task["routedRegion"] for task in waiting} == {EU}

    # After the fallback wait they run in us-east, each once; the strict one waits on.
    moved = await final(http, [task["id"] for task in waiting])
    ran_once_on(moved, runs, "agent-2", "any")
    assert (await get(http, strict["id"]))["status"] == "TASK_STATUS_QUEUED"

    # eu-central frees up: it runs the strict task. The moved tasks' old messages were
    # deleted from its queue at the move, so it never meets them.
    site.release(gate)
    ran_once_on(await final(http, [blocker["id"], strict["id"]]), runs, "agent-1", EU)

    async def eu_queue_empty() -> bool:
        return not await held_messages(region_farm, f"tasks.{EU}.>")

    await assert_eventually(
        eu_queue_empty, within=20, message="eu-central's queue still holds messages"
    )
    moved_unrun = await asyncio.to_thread(
        agent_metric, region_farm, "agent_tasks_total", status="moved"
    )
    assert moved_unrun == 0, "eu-central's agent met old messages of moved tasks"

    # The region goes down: its tasks go to any region, none lost, none twice.
    await asyncio.to_thread(region_farm.stop_process, "agent-1")
    after = [await create(http, site.url("/")) for _ in range(3)]
    done = await final(http, [task["id"] for task in after])
    ran_once_on(done, runs, "agent-2", "any")
