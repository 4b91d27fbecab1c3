"""Chaos: a redelivered task does not run twice beside its living attempt; a lost attempt says so.

One farm (two agents, a 5 s ack wait, heartbeats every second, supervised as in
test_chaos.py). nats-server is SIGKILLed while an agent loads a slow page and kept
down past the ack wait: JetStream redelivers the task as soon as it is back, while
the first attempt still runs. The page must be asked for once, and the task must
succeed once. Then an agent is SIGKILLed mid-task: the retry succeeds on the other
agent, and the first attempt's entry in the task's history says it was lost, over
HTTP/JSON and over gRPC.
"""

import asyncio
import secrets
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import grpc
import httpx
import nats
import pytest

from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_cli.launcher.farm import LocalFarm
from farm_core.queue import TASK_STREAM
from tests.e2e.conftest import fresh
from tests.e2e.test_chaos import CHAOS_ENV, QUICK_RESTARTS
from tests.farms import whole_farm_config
from tests.helpers import assert_eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ACK_WAIT_SECONDS = 5
ATTEMPT_ENV = {
    **CHAOS_ENV,
    "FARM_AGENT_ACK_WAIT_SECONDS": str(ACK_WAIT_SECONDS),
    "FARM_AGENT_HEARTBEAT_SECONDS": "1",
    "FARM_AGENT_HOLDER_LOST_SECONDS": "4",
}
FINAL = {"TASK_STATUS_SUCCEEDED", "TASK_STATUS_FAILED", "TASK_STATUS_CANCELLED"}


@pytest.fixture(scope="module")
def attempts_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    """The module's farm, supervised in the background, stopped by PID afterwards."""
    config = replace(
        whole_farm_config(tmp_path_factory.mktemp("attempts")),
        service_env=ATTEMPT_ENV,
        restart_policy=QUICK_RESTARTS,
    )
    with LocalFarm(config) as farm:
        farm.start_supervisor(interval=0.1)
        yield farm


@pytest.fixture
async def http(attempts_farm: LocalFarm) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the farm's Envoy with the admin key."""
    headers = {"authorization": f"Bearer {attempts_farm.admin_key}"}
    async with httpx.AsyncClient(
        base_url=attempts_farm.envoy_url, headers=headers, timeout=30
    ) as client:
        yield client


async def create(http: httpx.AsyncClient, url: str) -> str:
    """CreateTask of a screenshot of `url`; its id."""
    spec = fresh({"url": url, "screenshot": {}, "viewport": {"width": 640, "height": 400}})
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


async def running_agent(http: httpx.AsyncClient, site: Site, task_id: str, page: str) -> str:
    """The agent running the task, once its browser has asked for the page."""
    agent = ""

    async def running() -> bool:
        nonlocal agent
        task = await task_of(http, task_id)
        agent = task.get("agentId", "") if task.get("status") == "TASK_STATUS_RUNNING" else ""
        return bool(agent) and site.hits.get(page, 0) == 1

    await assert_eventually(running, within=60, message="the task never ran")
    return agent


async def final(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    """The task once it is final (90 s at most)."""
    task: dict[str, Any] = {}

    async def ended() -> bool:
        nonlocal task
        task = await task_of(http, task_id)
        return task.get("status") in FINAL

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


@pytest.mark.timeout(180)
async def test_a_task_redelivered_after_nats_was_killed_runs_once_beside_its_living_attempt(
    attempts_farm: LocalFarm, http: httpx.AsyncClient, site: Site
) -> None:
    page = f"twin-{secrets.token_hex(4)}"
    # Long enough that the first attempt still loads it when nats-server is back.
    task_id = await create(http, site.url(f"/count/{page}?ms=20000"))
    await running_agent(http, site, task_id, page)

    attempts_farm.supervisor.hold("nats")
    attempts_farm.kill("nats", signal.SIGKILL)
    # Down past the ack wait: JetStream redelivers the message the moment it is back.
    await asyncio.sleep(ACK_WAIT_SECONDS + 3)
    await asyncio.to_thread(attempts_farm.start_process, "nats")

    task = await final(http, task_id)
    # The first attempt's ack was withheld (its delivery lapsed): the message comes
    # again after the ack wait, and must then be acked unrun.
    await until_the_queue_is_empty(attempts_farm)
    assert task["status"] == "TASK_STATUS_SUCCEEDED", task
    assert task["attempts"] == 1, task
    assert (await task_of(http, task_id))["attempts"] == 1
    assert site.hits[page] == 1, "the page was asked for by a second attempt"
    assert site.most_in_flight[page] == 1
    response = await http.get("/v1/artifacts", params={"taskId": task_id})
    assert len(response.json().get("artifacts", [])) == 1, response.text


@pytest.mark.timeout(180)
async def test_a_killed_agents_attempt_is_lost_in_the_history_and_the_retry_succeeds_elsewhere(
    attempts_farm: LocalFarm, http: httpx.AsyncClient, site: Site
) -> None:
    page = f"lost-{secrets.token_hex(4)}"
    task_id = await create(http, site.url(f"/count/{page}?ms=3000"))
    killed = await running_agent(http, site, task_id, page)

    attempts_farm.supervisor.hold(killed)
    attempts_farm.kill(killed, signal.SIGKILL)
    try:
        task = await final(http, task_id)
    finally:
        await asyncio.to_thread(attempts_farm.start_process, killed)

    assert task["status"] == "TASK_STATUS_SUCCEEDED", task
    first, second = task["attemptHistory"]
    assert first["agentId"] == killed
    assert first["error"]["code"] == "AGENT_LOST", first
    assert f"agent '{killed}'" in first["error"]["message"]
    assert first["error"]["retryable"] is True
    assert second["agentId"] != killed and "error" not in second, second

    with grpc.insecure_channel(attempts_farm.envoy_url.removeprefix("http://")) as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        got = stub.GetTask(
            tasks_pb2.GetTaskRequest(id=task_id),
            metadata=(("authorization", f"Bearer {attempts_farm.admin_key}"),),
            timeout=30,
        )
    assert got.attempt_history[0].error.code == "AGENT_LOST"
    assert got.attempt_history[0].error.message == first["error"]["message"]
