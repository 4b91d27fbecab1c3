"""Chaos: accepted tasks are never lost while parts of the farm die for real (issue 3).

The tests share the package's farm (conftest.py: two agents with a 5 s ack wait,
heartbeats every second, on free ports, supervised as `farm up` does but restarting
after 0.2 s; what a test kills the supervisor brings back before the next one needs
it); its settings and helpers are in chaos.py.

The batch tests submit screenshot tasks against slow local pages through Envoy's
HTTP/JSON API, break one part mid-batch with a real signal, and then check every task
of the batch: it ends in a final state, it is listed once, and a succeeded task has
exactly one screenshot artifact, the one its result names.

The attempt tests run a task on a page of its own that answers when the test releases
it. An agent is SIGKILLed mid-task: the retry succeeds on the other agent, and the
first attempt's entry in the task's history says it was lost, over HTTP/JSON and over
gRPC. That test comes before the NATS restarts: an agent that has reconnected trusts
old heartbeats for FARM_AGENT_HOLDER_LOST_SECONDS, which would hold the retry as long.
nats-server is SIGKILLed while an agent loads its page and kept down past the ack
wait: JetStream redelivers the task as soon as it is back, and the redelivery waits
while the first attempt runs (its page is released only then). The page must be asked
for once, and the task must succeed once.

The storage outage tests (FARM_AGENT_UPLOAD_OUTAGE_SECONDS: 24 s on agent-1, 16 s on
agent-2, each agent in a region of that name, which the tests' tasks name to pick
the window they need; other tasks run on either agent): the storage service is
stopped for real (its connections refused, so every upload try fails at once with
UNAVAILABLE) while a screenshot task with maxAttempts 1 finishes its page: the agent
holds the result and keeps retrying the upload. Started again within the window, the
task succeeds on its one attempt; kept down past it, the task fails UPLOAD_FAILED with
a message that names the outage and the setting. Meanwhile the task says why it stays
RUNNING (`statusMessage`: `waiting for storage: …; retrying`) and its agent warns once.
They store nothing the others do not (database_neutral).

A scheduler stopped by someone else's SIGTERM (not `farm down`) drains and exits 0,
which the launcher once took for a stop on purpose: it must come back. What comes
back is the process, whatever database it uses (database_neutral).
"""

import asyncio
import datetime as dt
import os
import secrets
import signal
import time
from typing import Any

import grpc
import httpx
import nats
import pytest

from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.health import grpc_serving
from farm_cli.launcher.supervisor import Phase
from farm_core.queue import TASK_EVENT_SUBJECTS
from tests.e2e.supervised.chaos import (
    ACK_WAIT_SECONDS,
    LONG_WINDOW_REGION,
    OLD_TRIES,
    SHORT_OUTAGE_SECONDS,
    SHORT_WINDOW_REGION,
    Batch,
    EventLog,
    agent_log_count,
    both_agents_beat_since,
    create,
    final,
    kill_and_hold,
    outage,
    rate_limits_counted_in_nats,
    redeliveries_held,
    running_on_a_counted_page,
    statuses,
    task_of,
    task_story,
    until,
    until_the_queue_is_empty,
    upload_retries,
)
from tests.helpers import assert_eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.usefixtures("storage_up")]


@pytest.fixture
def batch(http: httpx.AsyncClient) -> Batch:
    """An empty batch of the test's own."""
    return Batch(http)


@pytest.fixture
def storage_down(chaos_farm: LocalFarm, storage_up: None) -> LocalFarm:
    """The farm with its storage service stopped."""
    chaos_farm.stop_process("storage")
    return chaos_farm


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
    # What agent-2 ran when it died: on a loaded machine the tasks seen on it before
    # the kill may have ended meanwhile, while the scheduler, not yet told of the
    # death, still lists the ones the kill cut short as running there.
    cut = await batch.held_by("agent-2") or held

    tasks = await batch.finished(within=120)
    assert statuses(tasks) == {"TASK_STATUS_SUCCEEDED": 40}
    await batch.check_none_lost_none_twice(tasks)
    # Redelivered after the ack wait: the cut tasks ran again (on agent-1 or the
    # restarted agent-2).
    assert any(tasks[task_id]["attempts"] >= 2 for task_id in cut), [tasks[i] for i in cut]
    assert chaos_farm.supervisor.restarts("agent-2") == restarts_before + 1


@pytest.mark.timeout(180)
async def test_a_killed_agents_attempt_is_lost_in_the_history_and_the_retry_succeeds_elsewhere(
    chaos_farm: LocalFarm, http: httpx.AsyncClient, site: Site
) -> None:
    first = await running_on_a_counted_page(http, site, "lost", ms=20000)
    task_id, killed = first.task_id, first.agent

    kill_and_hold(chaos_farm, killed)
    site.release(first.page)  # for the retry
    try:
        task = await final(http, task_id)
    finally:
        # Back while the next tests run (the supervisor sees it ready): none needs two agents.
        await asyncio.to_thread(chaos_farm.supervisor.start_now, killed)

    assert task["status"] == "TASK_STATUS_SUCCEEDED", task
    first, second = task["attemptHistory"]
    assert first["agentId"] == killed
    assert first["error"]["code"] == "AGENT_LOST", first
    assert f"agent '{killed}'" in first["error"]["message"]
    assert first["error"]["retryable"] is True
    assert second["agentId"] != killed and "error" not in second, second

    with grpc.insecure_channel(chaos_farm.envoy_url.removeprefix("http://")) as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        got = stub.GetTask(
            tasks_pb2.GetTaskRequest(id=task_id),
            metadata=(("authorization", f"Bearer {chaos_farm.admin_key}"),),
            timeout=30,
        )
    assert got.attempt_history[0].error.code == "AGENT_LOST"
    assert got.attempt_history[0].error.message == first["error"]["message"]


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
    await both_agents_beat_since(batch.http, restarted_at)
    # Auth's farm-wide rate limits live in memory-backed buckets, which the restart lost:
    # the calls above (each one counted) make them again, so the count is shared again.
    await rate_limits_counted_in_nats(chaos_farm, batch.http)


@pytest.mark.timeout(150)
async def test_uploads_wait_while_seaweedfs_is_down_none_lost_none_twice(
    chaos_farm: LocalFarm, batch: Batch, site: Site
) -> None:
    await batch.submit(20, site.url("/slow?ms=500"))
    await batch.some_reach("TASK_STATUS_SUCCEEDED")
    # Down this second and weed's stop and start, a few seconds in all: uploads meet it.
    async with outage(chaos_farm, "seaweedfs", seconds=1):
        pass  # Uploads meanwhile meet a storage that cannot store.

    tasks = await batch.finished(within=120)
    await batch.check_none_lost_none_twice(tasks)
    assert statuses(tasks) == {"TASK_STATUS_SUCCEEDED": 20}
    assert any(upload_retries(chaos_farm, task_id) for task_id in batch.ids), "no upload waited"


@pytest.mark.timeout(180)
async def test_a_task_redelivered_after_nats_was_killed_runs_once_beside_its_living_attempt(
    chaos_farm: LocalFarm, http: httpx.AsyncClient, site: Site
) -> None:
    first = await running_on_a_counted_page(http, site, "twin", ms=20000)
    task_id, page = first.task_id, first.page

    kill_and_hold(chaos_farm, "nats")
    try:
        # Down past the ack wait, which counts from the last in-progress ack before the
        # kill: JetStream redelivers the message the moment it is back.
        await asyncio.sleep(ACK_WAIT_SECONDS + 1)
        await asyncio.to_thread(chaos_farm.start_process, "nats")
        # The first attempt loads its page until the redelivery has come and waited for it.
        await assert_eventually(
            lambda: redeliveries_held(chaos_farm, task_id) > 0,
            within=15,
            interval=0.2,
            message=lambda: f"no redelivery waited for the first attempt: {site.hits[page]} hit(s)",
        )
    finally:
        site.release(page)

    task = await final(http, task_id)
    # The first attempt's ack was withheld (its delivery lapsed): the message comes
    # again after the ack wait, and must then be acked unrun.
    await until_the_queue_is_empty(chaos_farm)
    # On a failure: which agent took, held, ran or acked which delivery when.
    story = f"{task}\n{task_story(chaos_farm, task_id)}"
    assert task["status"] == "TASK_STATUS_SUCCEEDED", story
    assert task["attempts"] == 1, story
    assert (await task_of(http, task_id))["attempts"] == 1, task_story(chaos_farm, task_id)
    hits = site.hits[page]
    assert hits == 1, f"the page was asked for {hits} times:\n{task_story(chaos_farm, task_id)}"
    assert site.most_in_flight[page] == 1, task_story(chaos_farm, task_id)
    response = await http.get("/v1/artifacts", params={"taskId": task_id})
    assert len(response.json().get("artifacts", [])) == 1, response.text


@pytest.mark.database_neutral
@pytest.mark.timeout(150)
async def test_a_scheduler_sent_sigterm_by_hand_is_restarted_and_serves_tasks(
    chaos_farm: LocalFarm, http: httpx.AsyncClient, site: Site
) -> None:
    farm = chaos_farm
    first_pid = farm.process("scheduler").pid
    restarts_before = farm.supervisor.restarts("scheduler")
    # Not `farm down` nor the launcher: someone else's SIGTERM, by PID. It drains, exits 0.
    os.kill(first_pid, signal.SIGTERM)

    def back_up() -> bool:
        return farm.process("scheduler").pid != first_pid and farm.phase("scheduler") is Phase.UP

    await until(back_up, within=90, message="the scheduler was not started again")
    assert farm.supervisor.restarts("scheduler") == restarts_before + 1
    assert (farm.run_dir / "scheduler.pid").read_text().strip() == str(
        farm.process("scheduler").pid
    )
    assert grpc_serving(f"127.0.0.1:{farm.config.ports.scheduler}")
    task_id = await create(http, site.url(f"/?sigterm={secrets.token_hex(4)}"))
    assert (await final(http, task_id))["status"] == "TASK_STATUS_SUCCEEDED"


@pytest.mark.database_neutral
@pytest.mark.timeout(180)
async def test_a_short_storage_outage_does_not_spend_the_tasks_attempt(
    storage_down: LocalFarm, http: httpx.AsyncClient, site: Site
) -> None:
    # On agent-1: its 24 s window leaves storage time to come back on a loaded machine.
    task_id = await create(
        http,
        site.url(f"/?outage={secrets.token_hex(4)}"),
        maxAttempts=1,
        region=LONG_WINDOW_REGION,
    )

    # Storage stays down through the tries an upload used to get (each failed try that
    # is tried again is logged), then comes back.
    await assert_eventually(
        lambda: upload_retries(storage_down, task_id) >= OLD_TRIES,
        within=60,
        interval=0.2,
        message="the agent did not keep retrying the upload",
    )
    # The user sees why the task stays RUNNING (it looked like a hang).
    waiting: dict[str, Any] = {}

    async def noted() -> bool:
        nonlocal waiting
        waiting = await task_of(http, task_id)
        return bool(waiting.get("statusMessage"))

    await assert_eventually(noted, within=30, interval=0.2, message=lambda: f"no note: {waiting}")
    assert waiting["status"] == "TASK_STATUS_RUNNING", waiting
    assert waiting["statusMessage"].startswith("waiting for storage: storage unavailable"), waiting
    assert waiting["statusMessage"].endswith("; retrying"), waiting
    storage_down.start_process("storage")

    task = await final(http, task_id)
    assert task["status"] == "TASK_STATUS_SUCCEEDED", task.get("error")
    assert "statusMessage" not in task or task["statusMessage"] == "", task
    warned = rf"task {task_id} attempt 1 is waiting for storage: [^\n]*; retrying until"
    assert agent_log_count(storage_down, warned) == 1
    assert task["attempts"] == 1
    assert [record["attempt"] for record in task.get("attemptHistory", [])] in ([], [1])
    [artifact] = task["result"]["artifacts"]
    content = await http.get(f"/v1/artifacts/{artifact['id']}:content")
    assert content.status_code == 200
    assert content.content.startswith(b"\x89PNG")


@pytest.mark.database_neutral
@pytest.mark.timeout(180)
async def test_storage_down_past_the_window_fails_the_task_saying_so(
    storage_down: LocalFarm, http: httpx.AsyncClient, site: Site
) -> None:
    # On agent-2, whose window is the shorter to wait out.
    task_id = await create(
        http,
        site.url(f"/?outage={secrets.token_hex(4)}"),
        maxAttempts=1,
        region=SHORT_WINDOW_REGION,
    )

    task = await final(http, task_id)

    assert task["status"] == "TASK_STATUS_FAILED", task
    assert task["error"]["code"] == "UPLOAD_FAILED"
    message = task["error"]["message"]
    assert "UNAVAILABLE" in message
    assert f"{SHORT_OUTAGE_SECONDS} s is the longest outage" in message
    assert "FARM_AGENT_UPLOAD_OUTAGE_SECONDS" in message, message
    assert upload_retries(storage_down, task_id) > OLD_TRIES
