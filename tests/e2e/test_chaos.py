"""Chaos: accepted tasks are never lost while parts of the farm die for real (issue 3).

The tests share one farm (two agents with a 5 s ack wait, on free ports, supervised
as `farm up` does but restarting after 0.2 s; what a test kills the supervisor brings
back before the next one needs it). Each submits a batch of screenshot tasks against slow local
pages through Envoy's HTTP/JSON API, breaks one part mid-batch with a real signal, and
then checks every task of the batch: it ends in a final state, it is listed once, and
a succeeded task has exactly one screenshot artifact, the one its result names.
"""

import asyncio
import contextlib
import datetime as dt
import secrets
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import nats
import pytest
from nats.aio.msg import Msg
from nats.js.errors import BucketNotFoundError, NoKeysError

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_auth.shared_limits import RATES_BUCKET
from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.supervisor import Phase, RestartPolicy
from farm_core.queue import TASK_EVENT_SUBJECTS
from tests.e2e.conftest import fresh
from tests.farms import whole_farm_config
from tests.helpers import assert_eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FINAL = {"TASK_STATUS_SUCCEEDED", "TASK_STATUS_FAILED", "TASK_STATUS_CANCELLED"}
# Short waits everywhere, so a redelivery or a retry takes seconds, not minutes.
CHAOS_ENV = {
    "FARM_AGENT_ACK_WAIT_SECONDS": "5",
    "FARM_AGENT_IN_PROGRESS_SECONDS": "1",
    "FARM_AGENT_CONCURRENCY": "3",
    "FARM_AGENT_RETRY_DELAY_SECONDS": "0.5",
    "FARM_AGENT_RETRY_BASE_SECONDS": "0.2",
    "FARM_AGENT_RETRY_MAX_SECONDS": "2",
    # Every test page is on 127.0.0.1: per-host politeness must not be what limits a batch.
    "FARM_AGENT_HOST_MAX_CONCURRENCY": "16",
    "FARM_AGENT_HOST_MAX_RATE": "100",
    "FARM_SCHEDULER_REPUBLISH_INTERVAL_SECONDS": "1",
    "FARM_SCHEDULER_REPUBLISH_GRACE_SECONDS": "2",
    # The grace must be above it.
    "FARM_SCHEDULER_PUBLISH_TIMEOUT_SECONDS": "1",
    "FARM_SCHEDULER_WATCH_POLL_SECONDS": "1",
    # Events the killed scheduler had fetched come again this soon, not after the default 30 s.
    "FARM_SCHEDULER_EVENT_ACK_WAIT_SECONDS": "3",
    "FARM_GRACE_SECONDS": "2",
}
VIEWPORT = {"width": 640, "height": 400}
# A killed process comes back after 0.2 s, not 1 s: its crash, not the wait, is under test.
QUICK_RESTARTS = RestartPolicy(first_delay=0.2)


@pytest.fixture(scope="module")
def chaos_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    """The module's farm, supervised in the background, stopped by PID afterwards."""
    config = replace(
        whole_farm_config(tmp_path_factory.mktemp("chaos")),
        service_env=CHAOS_ENV,
        restart_policy=QUICK_RESTARTS,
    )
    with LocalFarm(config) as farm:
        farm.start_supervisor(interval=0.1)
        yield farm


@dataclass
class Batch:
    """One test's tasks, found again by a label only they carry."""

    http: httpx.AsyncClient
    label: str = field(default_factory=lambda: secrets.token_hex(6))
    ids: list[str] = field(default_factory=list)

    async def submit(self, count: int, url: str) -> None:
        """Creates `count` screenshot tasks of `url` (CreateTask), ten at a time."""
        spec = fresh(
            {"url": url, "screenshot": {}, "viewport": VIEWPORT, "labels": {"chaos": self.label}}
        )

        async def create() -> str:
            response = await self.http.post("/v1/tasks", json=spec)
            assert response.status_code == 200, response.text
            return str(response.json()["id"])

        for start in range(0, count, 10):
            wave = [create() for _ in range(min(10, count - start))]
            self.ids += await asyncio.gather(*wave)

    async def listed(self, status: str = "") -> list[dict[str, Any]]:
        """ListTasks of this batch (one page holds it all)."""
        params = {"label": f"chaos={self.label}", "pageSize": "1000"}
        if status:
            params["status"] = status
        response = await self.http.get("/v1/tasks", params=params)
        assert response.status_code == 200, response.text
        return list(response.json().get("tasks", []))

    async def some_reach(self, status: str) -> None:
        """Waits, 60 s at most, until a task of the batch is listed in `status`."""
        await assert_eventually(
            lambda: self.listed(status), within=60, message=f"no task reached {status}"
        )

    async def held_by(self, agent_id: str) -> list[str]:
        """Ids of the batch's tasks the scheduler sees running on `agent_id`."""
        running = await self.listed("TASK_STATUS_RUNNING")
        return [task["id"] for task in running if task.get("agentId") == agent_id]

    async def finished(self, *, within: float) -> dict[str, dict[str, Any]]:
        """Every task of the batch once all are final; fails the test after `within` s."""
        tasks: dict[str, dict[str, Any]] = {}

        async def all_final() -> bool:
            nonlocal tasks
            try:
                tasks = {task["id"]: task for task in await self.listed()}
            except (httpx.TransportError, AssertionError):
                tasks = {}  # the edge answers again once the scheduler is back
            mine = [tasks.get(task_id) for task_id in self.ids]
            return all(task is not None and task["status"] in FINAL for task in mine)

        await assert_eventually(
            all_final,
            within=within,
            interval=0.5,
            message=lambda: f"{len(self.ids)} submitted, {len(tasks)} listed: {statuses(tasks)}",
        )
        return tasks

    async def artifacts_of(self, task_id: str) -> list[dict[str, Any]]:
        """ListArtifacts by task id."""
        response = await self.http.get("/v1/artifacts", params={"taskId": task_id})
        assert response.status_code == 200, response.text
        return list(response.json().get("artifacts", []))

    async def check_none_lost_none_twice(self, tasks: dict[str, dict[str, Any]]) -> None:
        """The batch is what was submitted; each succeeded task has one screenshot, as named."""
        assert sorted(tasks) == sorted(self.ids), "a task is missing, or one was created twice"
        for task_id, task in tasks.items():
            stored = await self.artifacts_of(task_id)
            if task["status"] != "TASK_STATUS_SUCCEEDED":
                assert len(stored) <= 1, (task, stored)
                continue
            named = task.get("result", {}).get("artifacts", [])
            assert len(stored) == 1, f"task {task_id} has {len(stored)} artifacts: {stored}"
            assert [a["id"] for a in named] == [stored[0]["id"]], (task, stored)
            assert stored[0]["kind"] == "ARTIFACT_KIND_SCREENSHOT"


def statuses(tasks: dict[str, dict[str, Any]]) -> dict[str, int]:
    """How many tasks end in each status (and with which error code)."""
    counts: dict[str, int] = {}
    for task in tasks.values():
        key = task["status"] + (f" {task['error'].get('code')}" if task.get("error") else "")
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.fixture
async def batch(chaos_farm: LocalFarm) -> AsyncIterator[Batch]:
    """An HTTP client of the chaos farm's Envoy with the admin key, and an empty batch."""
    headers = {"authorization": f"Bearer {chaos_farm.admin_key}"}
    async with httpx.AsyncClient(
        base_url=chaos_farm.envoy_url, headers=headers, timeout=30
    ) as http:
        yield Batch(http)


@dataclass
class EventLog:
    """The agents' events as NATS carries them, with the time each arrived."""

    seen: list[tuple[float, queue_pb2.AgentEvent]] = field(default_factory=list)

    async def record(self, message: Msg) -> None:
        self.seen.append((time.monotonic(), queue_pb2.AgentEvent.FromString(message.data)))

    def between(self, start: float, end: float) -> list[queue_pb2.AgentEvent]:
        return [event for when, event in self.seen if start <= when <= end]


@contextlib.asynccontextmanager
async def outage(farm: LocalFarm, name: str, *, seconds: float) -> AsyncIterator[None]:
    """Stops process `name`, runs the block, and starts it again `seconds` after the block.

    The outage itself is under test, not a wait for something: it lasts.
    """
    await asyncio.to_thread(farm.stop_process, name)
    try:
        yield
        await asyncio.sleep(seconds)
    finally:
        await asyncio.to_thread(farm.start_process, name)


async def until(check: Any, *, within: float, message: str) -> None:
    """assert_eventually for blocking checks, run off the event loop."""

    async def off_loop() -> bool:
        return bool(await asyncio.to_thread(check))

    await assert_eventually(off_loop, within=within, interval=0.1, message=message)


@pytest.mark.timeout(150)
async def test_killed_agent_tasks_are_finished_by_another_none_lost_none_twice(
    chaos_farm: LocalFarm, batch: Batch, site: Site
) -> None:
    restarts_before = chaos_farm.supervisor.restarts("agent-2")
    await batch.submit(40, site.url("/slow?ms=600"))
    held: list[str] = []

    async def agent_2_holds_tasks() -> bool:
        nonlocal held
        held = await batch.held_by("agent-2")
        return bool(held)

    await assert_eventually(agent_2_holds_tasks, within=60, message="agent-2 never ran a task")
    chaos_farm.kill("agent-2", signal.SIGKILL)

    tasks = await batch.finished(within=120)
    assert statuses(tasks) == {"TASK_STATUS_SUCCEEDED": 40}
    await batch.check_none_lost_none_twice(tasks)
    # Redelivered after the ack wait: the held tasks ran again (on agent-1 or the
    # restarted agent-2).
    assert any(tasks[task_id]["attempts"] >= 2 for task_id in held), [tasks[i] for i in held]
    assert chaos_farm.supervisor.restarts("agent-2") == restarts_before + 1


@pytest.mark.timeout(150)
async def test_killed_scheduler_comes_back_and_applies_what_happened_meanwhile(
    chaos_farm: LocalFarm, batch: Batch, site: Site
) -> None:
    events = EventLog()
    connection = await nats.connect(**chaos_farm.nats_access("scheduler").connect_options())
    try:
        await connection.subscribe(TASK_EVENT_SUBJECTS, cb=events.record)
        await batch.submit(20, site.url("/slow?ms=800"))
        await batch.some_reach("TASK_STATUS_SUCCEEDED")
        restarts_before = chaos_farm.supervisor.restarts("scheduler")
        killed_at = time.monotonic()
        chaos_farm.kill("scheduler", signal.SIGKILL)
        await until(
            lambda: (
                chaos_farm.supervisor.restarts("scheduler") == restarts_before + 1
                and chaos_farm.phase("scheduler") is Phase.UP
            ),
            within=60,
            message="the supervisor did not bring the scheduler back",
        )
        back_at = time.monotonic()
        tasks = await batch.finished(within=90)
    finally:
        await connection.close()

    assert statuses(tasks) == {"TASK_STATUS_SUCCEEDED": 20}
    await batch.check_none_lost_none_twice(tasks)
    while_down = events.between(killed_at, back_at)
    finished_while_down = {
        event.task_id for event in while_down if event.status == tasks_pb2.TASK_STATUS_SUCCEEDED
    }
    assert finished_while_down, "no task finished while the scheduler was down"
    for task_id in finished_while_down & set(batch.ids):
        assert tasks[task_id]["status"] == "TASK_STATUS_SUCCEEDED"


@pytest.mark.timeout(150)
async def test_restarted_nats_loses_no_task_and_services_reconnect(
    chaos_farm: LocalFarm, batch: Batch, site: Site
) -> None:
    await batch.submit(20, site.url("/slow?ms=800"))
    await batch.some_reach("TASK_STATUS_RUNNING")
    async with outage(chaos_farm, "nats", seconds=2):
        # Accepted while NATS is down: kept in SQL, published once it is back. Agents'
        # acks and reports fail meanwhile.
        await batch.submit(10, site.url("/slow?ms=300"))
    restarted_at = dt.datetime.now(dt.UTC)

    tasks = await batch.finished(within=120)
    await batch.check_none_lost_none_twice(tasks)
    assert statuses(tasks) == {"TASK_STATUS_SUCCEEDED": 30}
    for name in ("auth", "storage", "scheduler", "agent-1", "agent-2"):
        assert chaos_farm.phase(name) is Phase.UP, name

    # The agents' heartbeats (ListAgents) come back too, within a few heartbeats.
    beats: dict[str, str] = {}

    async def both_beat_since_the_restart() -> bool:
        nonlocal beats
        response = await batch.http.get("/v1/agents")
        assert response.status_code == 200, response.text
        beats = {a["id"]: a.get("heartbeatTime", "") for a in response.json().get("agents", [])}
        return all(
            beats.get(name) and dt.datetime.fromisoformat(beats[name]) > restarted_at
            for name in ("agent-1", "agent-2")
        )

    await assert_eventually(
        both_beat_since_the_restart,
        within=20,
        interval=1,
        message=lambda: f"no heartbeat since the NATS restart at {restarted_at}: {beats}",
    )

    # Auth's farm-wide rate limits live in memory-backed buckets, which the restart lost:
    # the calls above (each one counted) make them again, so the count is shared again.
    connection = await nats.connect(**chaos_farm.nats_access("auth").connect_options())
    try:
        js = connection.jetstream()

        async def rate_limits_counted_in_nats() -> bool:
            assert (await batch.http.get("/v1/whoami")).status_code == 200
            with contextlib.suppress(BucketNotFoundError, NoKeysError):
                return bool(await (await js.key_value(RATES_BUCKET)).keys())
            return False

        await assert_eventually(
            rate_limits_counted_in_nats,
            within=20,
            interval=1,
            message="auth counts rates only locally since the NATS restart",
        )
    finally:
        await connection.close()


@pytest.mark.timeout(150)
async def test_uploads_wait_while_seaweedfs_is_down_none_lost_none_twice(
    chaos_farm: LocalFarm, batch: Batch, site: Site
) -> None:
    await batch.submit(20, site.url("/slow?ms=500"))
    await batch.some_reach("TASK_STATUS_SUCCEEDED")
    async with outage(chaos_farm, "seaweedfs", seconds=3):
        pass  # Uploads meanwhile meet a storage that cannot store.

    tasks = await batch.finished(within=120)
    await batch.check_none_lost_none_twice(tasks)
    assert statuses(tasks) == {"TASK_STATUS_SUCCEEDED": 20}
