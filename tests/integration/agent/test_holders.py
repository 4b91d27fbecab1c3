"""The fence of a redelivered task: who may still run it, read from real heartbeats in NATS.

And a retry, whose earlier delivery was handed back, does not look for one.
"""

import datetime as dt
import uuid

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.work.holders import Holders
from farm_core.shared_buckets import agents_bucket
from tests.clock import MovedClock
from tests.integration.agent.conftest import SUCCEEDED, Events, StartIntake, publish, waits
from tests.pages import Site

LOST_SECONDS = 15.0


async def beat(
    agents: KeyValue,
    agent_id: str,
    tasks: list[str],
    age_seconds: float,
    ending: tuple[str, ...] = (),
) -> None:
    """Puts `agent_id`'s heartbeat, sent `age_seconds` ago, listing `tasks` as running
    and `ending` as ended lately."""
    heartbeat = queue_pb2.AgentHeartbeat(
        agent_id=agent_id, running_task_ids=tasks, ending_task_ids=ending
    )
    heartbeat.heartbeat_time.FromDatetime(
        dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age_seconds)
    )
    await agents.put(agent_id, heartbeat.SerializeToString())


@pytest.fixture
async def agents(js: JetStreamContext) -> KeyValue:
    return await agents_bucket(js)


def holders_of(
    nc: Client, js: JetStreamContext, agents: KeyValue, clock: MovedClock, here: int = 1
) -> Holders:
    return Holders(
        nc,
        js,
        agents,
        agent_id="agent-me",
        lost_seconds=LOST_SECONDS,
        look_again_seconds=1.0,
        attempts_here=lambda _task_id: here,
        clock=clock,
    )


async def test_another_agent_that_still_beats_holds_the_task(
    nc: Client, js: JetStreamContext, agents: KeyValue
) -> None:
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    holder = f"agent-{uuid.uuid4().hex[:8]}"
    await beat(agents, holder, ["other", task_id], age_seconds=2)
    held = await holders_of(nc, js, agents, MovedClock(1000.0)).holder(task_id)
    assert held is not None and held.agent_id == holder
    assert held.retry_after_seconds == 1.0


async def test_an_agent_whose_attempt_ended_lately_holds_the_task(
    nc: Client, js: JetStreamContext, agents: KeyValue
) -> None:
    # Its end may not be applied (and the task marked ended) yet: the redelivery waits.
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    holder = f"agent-{uuid.uuid4().hex[:8]}"
    await beat(agents, holder, ["other"], age_seconds=0, ending=(task_id,))
    held = await holders_of(nc, js, agents, MovedClock(1000.0)).holder(task_id)
    assert held is not None and held.agent_id == holder


async def test_an_agent_silent_for_longer_than_the_bound_holds_nothing_once_this_one_is_settled(
    nc: Client, js: JetStreamContext, agents: KeyValue
) -> None:
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    await beat(agents, f"agent-{uuid.uuid4().hex[:8]}", [task_id], age_seconds=LOST_SECONDS + 5)
    clock = MovedClock(1000.0)
    holders = holders_of(nc, js, agents, clock)
    # Just connected: every beat may be old only because NATS was down; it still counts.
    assert await holders.holder(task_id) is not None
    clock.now += LOST_SECONDS + 1
    assert await holders.holder(task_id) is None


async def test_its_own_heartbeat_and_other_tasks_hold_nothing(
    nc: Client, js: JetStreamContext, agents: KeyValue
) -> None:
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    await beat(agents, "agent-me", [task_id], age_seconds=1)
    await beat(agents, f"agent-{uuid.uuid4().hex[:8]}", ["another-task"], age_seconds=1)
    assert await holders_of(nc, js, agents, MovedClock(1000.0)).holder(task_id) is None


async def test_an_earlier_delivery_still_running_here_holds_the_task(
    nc: Client, js: JetStreamContext, agents: KeyValue
) -> None:
    held = await holders_of(nc, js, agents, MovedClock(1000.0), here=2).holder("task-here")
    assert held is not None and held.agent_id == "agent-me"


async def test_a_retry_after_a_failed_attempt_is_not_held_by_that_attempts_last_heartbeat(
    js: JetStreamContext,
    agents: KeyValue,
    start_intake: StartIntake,
    events: Events,
    site: Site,
) -> None:
    """The failed attempt's agent beat before it failed: its beat still lists the task."""
    await start_intake(retry_base_seconds=2, retry_max_seconds=10)
    held_before = waits("held_elsewhere")
    spec = tasks_pb2.TaskSpec(
        url=site.url(f"/flaky/{uuid.uuid4().hex}?fails=1"),
        content=tasks_pb2.ContentOptions(),
        fail_on_http_error=True,
    )
    task_id = await publish(js, spec)
    await beat(agents, "agent-that-failed-it", [task_id], age_seconds=0)

    final = await events.final(task_id, within=30)

    assert (final.status, final.attempt) == (SUCCEEDED, 2)
    assert waits("held_elsewhere") == held_before
