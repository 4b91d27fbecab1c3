"""The agent's heartbeats in `farm_agents` and its remote drain, in-process and as a process."""

import asyncio
import uuid

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.server import AgentService
from farm_agent.work.priorities import PRECEDENCE
from farm_core.free_ports import free_port
from farm_core.queue import TASK_STREAM, consumer_name, drain_subject
from farm_core.server import ServiceHost
from farm_core.shared_buckets import agents_bucket
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.agent.agent_processes import AgentProcesses
from tests.integration.agent.conftest import (
    RUNNING,
    SUCCEEDED,
    Events,
    SettingsFactory,
    publish,
)
from tests.pages import Site

pytestmark = pytest.mark.integration

EXIT_WITHIN_SECONDS = 30


async def heartbeat_of(js: JetStreamContext, agent_id: str) -> queue_pb2.AgentHeartbeat | None:
    try:
        entry = await (await agents_bucket(js)).get(agent_id)
    except KeyNotFoundError:
        return None
    return queue_pb2.AgentHeartbeat.FromString(entry.value or b"")


def extract_of(site: Site, path: str) -> tasks_pb2.TaskSpec:
    """A task with nothing to upload (these agents have no storage)."""
    return tasks_pb2.TaskSpec(
        url=site.url(path), extract=tasks_pb2.ExtractOptions(fields={"body": "body"})
    )


async def test_heartbeats_say_what_the_agent_runs_and_a_drain_notice_reaches_it(
    nats_server: NatsServer,
    nc: Client,
    js: JetStreamContext,
    events: Events,
    make_settings: SettingsFactory,
    site: Site,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    agent_id = f"beating-{uuid.uuid4().hex[:6]}"
    settings = make_settings(
        FARM_HOME=tmp_path_factory.mktemp("b"),
        NATS_URL=nats_server.url,
        id=agent_id,
        region="eu",
        concurrency=3,
        heartbeat_seconds=0.2,
    )
    stop_requested = asyncio.Event()
    service = AgentService(settings, on_drain_notice=stop_requested.set)
    host = ServiceHost(service, settings, free_port())
    gate = f"gate-{uuid.uuid4().hex[:8]}"
    await host.start()
    try:
        first = await heartbeat_of(js, agent_id)
        assert first is not None
        assert (first.region, first.concurrency, first.draining) == ("eu", 3, False)
        task_id = await publish(js, extract_of(site, f"/gate/{gate}"))

        async def shows_the_task() -> bool:
            beat = await heartbeat_of(js, agent_id)
            return beat is not None and list(beat.running_task_ids) == [task_id]

        await assert_eventually(shows_the_task, message="heartbeat without the running task")
        beat = await heartbeat_of(js, agent_id)
        assert beat is not None
        assert beat.start_time == first.start_time
        assert beat.heartbeat_time.ToNanoseconds() > first.heartbeat_time.ToNanoseconds()

        await nc.publish(
            drain_subject(agent_id), queue_pb2.DrainNotice(agent_id=agent_id).SerializeToString()
        )
        await assert_eventually(stop_requested.is_set, message="the drain notice asked no stop")
        site.release(gate)
        assert (await events.final(task_id)).status == SUCCEEDED
    finally:
        site.release(gate)
        await host.stop(5)
        for priority in PRECEDENCE:
            await js.delete_consumer(TASK_STREAM, consumer_name("eu", priority))
    assert await heartbeat_of(js, agent_id) is None


async def test_a_task_that_starts_or_ends_shows_in_the_heartbeat_before_the_next_regular_beat(
    nats_server: NatsServer,
    js: JetStreamContext,
    events: Events,
    make_settings: SettingsFactory,
    site: Site,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    agent_id = f"prompt-{uuid.uuid4().hex[:6]}"
    # Longer than the whole test: only the beats on a change can tell it.
    settings = make_settings(
        FARM_HOME=tmp_path_factory.mktemp("p"),
        NATS_URL=nats_server.url,
        id=agent_id,
        region="eu",
        concurrency=2,
        heartbeat_seconds=60,
    )
    service = AgentService(settings, on_drain_notice=lambda: None)
    host = ServiceHost(service, settings, free_port())
    gate = f"gate-{uuid.uuid4().hex[:8]}"
    await host.start()
    try:
        first = await heartbeat_of(js, agent_id)
        assert first is not None and first.busy_places == 0
        task_id = await publish(js, extract_of(site, f"/gate/{gate}"))

        async def busy_with_the_task() -> bool:
            beat = await heartbeat_of(js, agent_id)
            return (
                beat is not None
                and beat.busy_places == 1
                and list(beat.running_task_ids) == [task_id]
            )

        await assert_eventually(busy_with_the_task, message="the start was not beaten")
        site.release(gate)
        assert (await events.final(task_id)).status == SUCCEEDED

        async def free_again() -> bool:
            beat = await heartbeat_of(js, agent_id)
            return beat is not None and beat.busy_places == 0 and not beat.running_task_ids

        await assert_eventually(free_again, message="the end was not beaten")
        # Until its end is surely applied, a redelivery elsewhere still waits for it.
        beat = await heartbeat_of(js, agent_id)
        assert beat is not None and list(beat.ending_task_ids) == [task_id]
    finally:
        site.release(gate)
        await host.stop(5)
        for priority in PRECEDENCE:
            await js.delete_consumer(TASK_STREAM, consumer_name("eu", priority))


@pytest.fixture
async def agent_process(
    agent_processes: AgentProcesses, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, asyncio.subprocess.Process]:
    """`python -m farm_agent` as the launcher starts it."""
    agent_id = f"proc-{uuid.uuid4().hex[:6]}"
    return agent_id, await agent_processes.start(tmp_path_factory.mktemp("d"), agent_id)


async def test_a_drain_notice_lets_the_running_task_finish_then_the_agent_exits_cleanly(
    nc: Client,
    js: JetStreamContext,
    events: Events,
    agent_process: tuple[str, asyncio.subprocess.Process],
    site: Site,
) -> None:
    agent_id, process = agent_process

    async def beating() -> bool:
        return await heartbeat_of(js, agent_id) is not None

    await assert_eventually(beating, within=30, message="the agent never beat its heartbeat")
    gate = f"gate-{uuid.uuid4().hex[:8]}"
    task_id = await publish(js, extract_of(site, f"/gate/{gate}"))
    await assert_eventually(lambda: RUNNING in events.statuses(task_id), message="not started")

    await nc.publish(
        drain_subject(agent_id), queue_pb2.DrainNotice(agent_id=agent_id).SerializeToString()
    )

    async def says_it_drains() -> bool:
        beat = await heartbeat_of(js, agent_id)
        return beat is not None and beat.draining and list(beat.running_task_ids) == [task_id]

    await assert_eventually(says_it_drains, message="the heartbeat does not say it drains")
    assert process.returncode is None, "the agent exited before its task finished"
    site.release(gate)
    final = await events.final(task_id)
    assert final.status == SUCCEEDED
    assert await asyncio.wait_for(process.wait(), EXIT_WITHIN_SECONDS) == 0
    assert await heartbeat_of(js, agent_id) is None
