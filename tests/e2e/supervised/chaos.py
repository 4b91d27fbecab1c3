"""What the chaos tests (test_chaos.py, test_agent_restart.py) share: their farm, batches, waits.

Their farm has short waits everywhere, so that a redelivery, a retry or a lost
attempt takes seconds, not minutes; the tests reach it through Envoy's HTTP/JSON API
with the admin key.
"""

import asyncio
import contextlib
import datetime as dt
import json
import re
import secrets
import signal
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.aio.msg import Msg
from nats.js.errors import BucketNotFoundError, NoKeysError

from farm.queue.v1 import queue_pb2
from farm_auth.shared_limits import RATES_BUCKET
from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.supervisor import RestartPolicy
from farm_core.queue import TASK_STREAM
from tests.e2e.conftest import FINAL_STATES, fresh
from tests.farms import QUICK_RECOVERY_ENV, whole_farm_config
from tests.helpers import assert_eventually
from tests.pages import Site

ACK_WAIT_SECONDS = 5
# How long an agent holds a result while storage is unavailable. Its upload tries come
# at 0, 0.2, 0.6, 1.4, 3.0, 6.2, 11.2, 16.2, 21.2 and 26.2 s (waits doubling from 0.2 s to
# 5 s): 24 s holds nine, the last at 21.2 s, with seconds to spare either way. Storage,
# started again after the fifth failed try (3 s) and the task's note, then has 18 s to
# answer for that try (it takes about 1 s idle; at a load of 25 the note and the start
# took over 8 s, which a 14 s window did not leave).
OUTAGE_SECONDS = 24
# agent-2's window, for a test that waits it out: 16 s holds seven tries, the last at
# 11.2 s (the next would start at 16.2 s, past it however late the tries run), six of
# them by 6.2 s.
SHORT_OUTAGE_SECONDS = 16
# The tries an upload got before that window: an outage longer than them failed the attempt.
OLD_TRIES = 5
# Each agent serves a region named after its window, besides `any`: a task with that
# `region` runs on it, one without runs on either.
LONG_WINDOW_REGION = f"window-{OUTAGE_SECONDS}s"
SHORT_WINDOW_REGION = f"window-{SHORT_OUTAGE_SECONDS}s"
CHAOS_ENV = {
    **QUICK_RECOVERY_ENV,
    "FARM_AGENT_ACK_WAIT_SECONDS": str(ACK_WAIT_SECONDS),
    "FARM_AGENT_CONCURRENCY": "3",
    "FARM_AGENT_UPLOAD_OUTAGE_SECONDS": str(OUTAGE_SECONDS),
    # Events the killed scheduler had fetched come again this soon, not after the default 30 s.
    "FARM_SCHEDULER_EVENT_ACK_WAIT_SECONDS": "3",
}
CHAOS_AGENT_ENV = (
    {"FARM_AGENT_REGION": LONG_WINDOW_REGION},
    {
        "FARM_AGENT_REGION": SHORT_WINDOW_REGION,
        "FARM_AGENT_UPLOAD_OUTAGE_SECONDS": str(SHORT_OUTAGE_SECONDS),
    },
)
VIEWPORT = {"width": 640, "height": 400}
# A killed process comes back after 0.2 s, not 1 s: its crash, not the wait, is under test.
QUICK_RESTARTS = RestartPolicy(first_delay=0.2)


@contextlib.contextmanager
def supervised_chaos_farm(
    home: Path, more_env: Mapping[str, str] | None = None
) -> Iterator[LocalFarm]:
    """A whole farm with CHAOS_ENV (and `more_env`) and CHAOS_AGENT_ENV, supervised in the
    background, stopped by PID afterwards."""
    service_env = {**CHAOS_ENV, **(more_env or {})}
    config = replace(
        whole_farm_config(home),
        service_env=service_env,
        agent_env=CHAOS_AGENT_ENV,
        restart_policy=QUICK_RESTARTS,
    )
    with LocalFarm(config) as farm:
        farm.start_supervisor(interval=0.1)
        yield farm


@contextlib.asynccontextmanager
async def admin_http(farm: LocalFarm) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the farm's Envoy with the admin key."""
    headers = {"authorization": f"Bearer {farm.admin_key}"}
    async with httpx.AsyncClient(base_url=farm.envoy_url, headers=headers, timeout=30) as client:
        yield client


@dataclass
class Batch:
    """One test's tasks, found again by a label only they carry."""

    http: httpx.AsyncClient
    label: str = field(default_factory=lambda: secrets.token_hex(6))
    ids: list[str] = field(default_factory=list)

    async def submit(self, count: int, url: str) -> None:
        """Creates `count` screenshot tasks of `url` (CreateTask), ten at a time."""
        labels = {"chaos": self.label}
        for start in range(0, count, 10):
            wave = [create(self.http, url, labels=labels) for _ in range(min(10, count - start))]
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
            return all(task is not None and task["status"] in FINAL_STATES for task in mine)

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


async def create(http: httpx.AsyncClient, url: str, **fields: Any) -> str:
    """CreateTask of a screenshot of `url` (with `fields`); its id."""
    spec = fresh({"url": url, "screenshot": {}, "viewport": VIEWPORT, **fields})
    response = await http.post("/v1/tasks", json=spec)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def task_of(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    """GetTask over HTTP/JSON; {} while the edge does not answer."""
    try:
        response = await http.get(f"/v1/tasks/{task_id}")
    except httpx.TransportError:
        return {}
    return dict(response.json()) if response.status_code == 200 else {}


@dataclass(frozen=True)
class Running:
    """A task of a gated, counted page of its own, seen running; site.release(page) ends it."""

    task_id: str
    page: str
    agent: str


async def running_on_a_counted_page(
    http: httpx.AsyncClient, site: Site, name: str, *, ms: int
) -> Running:
    """A task of its own page (`/count/<name>-<hex>`), once its agent asked for it.

    The page answers once the test releases it (site.release(page)), `ms` after the
    request at the latest.
    """
    page = f"{name}-{secrets.token_hex(4)}"
    task_id = await create(http, site.url(f"/count/{page}?ms={ms}"))
    agent = ""

    async def running() -> bool:
        nonlocal agent
        task = await task_of(http, task_id)
        agent = task.get("agentId", "") if task.get("status") == "TASK_STATUS_RUNNING" else ""
        return bool(agent) and site.hits.get(page, 0) == 1

    await assert_eventually(running, within=60, message="the task never ran")
    return Running(task_id, page, agent)


def kill_and_hold(farm: LocalFarm, name: str) -> None:
    """SIGKILLs process `name`; the supervisor leaves it down until the test starts it."""
    farm.supervisor.hold(name)
    farm.kill(name, signal.SIGKILL)


async def final(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    """The task once it is final (90 s at most)."""
    task: dict[str, Any] = {}

    async def ended() -> bool:
        nonlocal task
        task = await task_of(http, task_id)
        return task.get("status") in FINAL_STATES

    await assert_eventually(ended, within=90, interval=0.5, message=lambda: f"not final: {task}")
    return task


async def until_the_queue_is_empty(farm: LocalFarm) -> None:
    """Waits until FARM_TASKS holds no message: every delivery of the test's task is settled."""
    connection = await nats.connect(**farm.nats_access("scheduler").connect_options())
    try:
        js = connection.jetstream()

        async def empty() -> bool:
            return (await js.stream_info(TASK_STREAM)).state.messages == 0

        await assert_eventually(empty, within=60, interval=0.5, message="the task stayed queued")
    finally:
        await connection.close()


def agent_log_count(farm: LocalFarm, pattern: str) -> int:
    """How often the regular expression `pattern` matches in the agents' logs."""
    logs = (farm.log_dir / f"agent-{index}.log" for index in range(1, farm.config.agents + 1))
    return sum(
        len(re.findall(pattern, log.read_text(errors="replace"))) for log in logs if log.exists()
    )


def upload_retries(farm: LocalFarm, task_id: str) -> int:
    """How often the agents have logged that storage was unavailable for the task's upload."""
    return agent_log_count(farm, rf"storage unavailable[^\n]* for screenshot of task {task_id};")


def redeliveries_held(farm: LocalFarm, task_id: str) -> int:
    """How often a redelivery of the task waited for a holder: an attempt that may still run."""
    return agent_log_count(farm, rf"task {task_id} delivery \d+ waits: agent ")


def task_story(farm: LocalFarm, task_id: str) -> str:
    """Every line the agents and the scheduler logged about the task, in time order.

    Each line says who logged it: which agent took which delivery, held, ran or
    acked it unrun, and when the scheduler applied an event or marked the task ended.
    """
    names = [f"agent-{index}" for index in range(1, farm.config.agents + 1)] + ["scheduler"]
    lines: list[tuple[str, str]] = []
    for name in names:
        path = farm.log_dir / f"{name}.log"
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if task_id not in line:
                continue
            try:
                entry = json.loads(line)
                lines.append((entry["time"], f"{entry['time']} {name} {entry['message']}"))
            except (ValueError, KeyError, TypeError):
                lines.append(("", f"{name} {line}"))
    return "\n".join(text for _, text in sorted(lines)) or f"no log line names task {task_id}"


async def both_agents_beat_since(http: httpx.AsyncClient, since: dt.datetime) -> None:
    """Waits, 20 s at most, until ListAgents shows a heartbeat of each agent after `since`."""
    beats: dict[str, str] = {}

    async def both_beat() -> bool:
        nonlocal beats
        response = await http.get("/v1/agents")
        assert response.status_code == 200, response.text
        beats = {a["id"]: a.get("heartbeatTime", "") for a in response.json().get("agents", [])}
        return all(
            beats.get(name) and dt.datetime.fromisoformat(beats[name]) > since
            for name in ("agent-1", "agent-2")
        )

    await assert_eventually(
        both_beat,
        within=20,
        interval=1,
        message=lambda: f"no heartbeat since the NATS restart at {since}: {beats}",
    )


async def rate_limits_counted_in_nats(farm: LocalFarm, http: httpx.AsyncClient) -> None:
    """Waits, 20 s at most, until auth's rate counts are in NATS again (calling WhoAmI)."""
    connection = await nats.connect(**farm.nats_access("auth").connect_options())
    try:
        js = connection.jetstream()

        async def counted_in_nats() -> bool:
            assert (await http.get("/v1/whoami")).status_code == 200
            with contextlib.suppress(BucketNotFoundError, NoKeysError):
                return bool(await (await js.key_value(RATES_BUCKET)).keys())
            return False

        await assert_eventually(
            counted_in_nats,
            within=20,
            interval=1,
            message="auth counts rates only locally since the NATS restart",
        )
    finally:
        await connection.close()
