"""SessionService in the scheduler, with the real nats-server; the test plays the agents.

A scripted agent beats its heartbeat into `farm_agents` and answers the orders on
`sessions.<agent_id>.*` as the test tells it, so that placement, refusals, lost
agents and closes can be shown one by one (the real agents are in tests/e2e).
"""

import asyncio
import uuid
from collections.abc import Callable

import grpc
import pytest

from farm.queue.v1 import queue_pb2
from farm.sessions.v1 import sessions_pb2, sessions_pb2_grpc
from farm.tasks.v1 import tasks_pb2
from farm_core.quotas import TenantQuotas
from farm_core.sessions import SessionOrder, closed_subject
from tests.helpers import assert_eventually
from tests.integration.scheduler import scripted_agents
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import (
    Scheduler,
    StartScheduler,
    rpc_error,
    token,
)
from tests.integration.scheduler.scripted_agents import (
    SESSIONS,
    ScriptedAgent,
    Sessions,
    opened,
    refused,
    sessions_of,
)

pytestmark = pytest.mark.integration
# The scheduler and the scripted agents, as fixtures here.
scheduler = scripted_agents.scheduler
agents = scripted_agents.agents


async def test_a_session_opens_on_the_agent_with_the_most_free_places(
    scheduler: Scheduler, agents: Callable[..., asyncio.Future[ScriptedAgent]]
) -> None:
    busy = await agents("busy", concurrency=2)
    roomy = await agents("roomy", concurrency=4)
    session = await sessions_of(scheduler).create(labels={"job": "x"})
    assert session.state == sessions_pb2.SESSION_STATE_ACTIVE
    assert session.agent_id == "roomy"
    assert [verb for verb, _ in roomy.orders] == [SessionOrder.OPEN]
    assert busy.orders == []
    order = queue_pb2.OpenSessionOrder.FromString(roomy.orders[0][1])
    assert order.session_id == session.id and order.tenant == scheduler.tenant
    assert order.spec.idle_timeout_seconds == 300 and order.spec.labels == {"job": "x"}
    assert session.cdp_url.endswith(f"/v1/sessions/{session.id}/cdp")


@pytest.mark.parametrize("replicas", [1, 2], ids=["one-replica", "two-replicas"])
async def test_sessions_created_one_after_another_go_to_different_agents_before_they_beat(
    start_scheduler: StartScheduler,
    agents: Callable[..., asyncio.Future[ScriptedAgent]],
    replicas: int,
) -> None:
    # The agents do not beat with the sessions they open, as when the second create
    # comes before the first's agent beats again. Before, the second read both agents
    # as free and went to the first's agent again; with two replicas, the second only
    # learns of the first from the sessions table they share.
    started = [await start_scheduler(session_agent_lost_seconds=60) for _ in range(replicas)]
    first_agent = await agents("a")
    second_agent = await agents("b")
    first = await sessions_of(started[0]).create()
    second = await sessions_of(started[-1]).create()
    assert sorted([first.agent_id, second.agent_id]) == ["a", "b"]
    assert len(first_agent.orders) == len(second_agent.orders) == 1


async def test_a_refusal_sends_the_session_to_the_next_agent(
    scheduler: Scheduler, agents: Callable[..., asyncio.Future[ScriptedAgent]]
) -> None:
    full = await agents("full", concurrency=4, answer=refused("NO_CAPACITY"))
    other = await agents("other", concurrency=2)
    session = await sessions_of(scheduler).create()
    assert session.agent_id == "other"
    assert len(full.orders) == 1 and len(other.orders) == 1


async def test_no_agent_with_room_is_resource_exhausted_and_leaves_no_session(
    scheduler: Scheduler, agents: Callable[..., asyncio.Future[ScriptedAgent]]
) -> None:
    # As the agent words it: it names itself, so the scheduler does not name it again.
    await agents(
        "full", answer=refused("NO_CAPACITY", "agent full has no free place for a session")
    )
    eu = await agents("eu-agent", region="eu")
    sessions = sessions_of(scheduler)
    error = await rpc_error(sessions.create(region="us"))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # No agent there at all: said so, not as if every one were full.
    assert "no agent in region 'us' takes sessions now: none is up" in (error.details() or "")
    eu.answer = refused("AGENT_DRAINING")
    error = await rpc_error(sessions.create())
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = error.details() or ""
    assert "agent full has no free place for a session" in details
    assert "full: agent full" not in details
    assert "eu-agent: AGENT_DRAINING!" in details
    assert await sessions.listed() == []


async def test_a_device_the_agent_does_not_know_is_invalid_argument_naming_the_field(
    scheduler: Scheduler, agents: Callable[..., asyncio.Future[ScriptedAgent]]
) -> None:
    # A name the scheduler knows but the agent's Playwright does not (another version).
    await agents("a", answer=refused("INVALID_DEVICE"))
    sessions = sessions_of(scheduler)
    error = await rpc_error(sessions.create(device="iPhone 13"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("device: ")
    assert await sessions.listed() == []


async def test_concurrent_creates_cannot_pass_the_open_sessions_quota(
    scheduler: Scheduler, agents: Callable[..., asyncio.Future[ScriptedAgent]]
) -> None:
    await agents("a", concurrency=20)
    sessions = sessions_of(scheduler, TenantQuotas(max_open_sessions=2))

    async def one() -> grpc.StatusCode:
        try:
            await sessions.create()
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    codes = await asyncio.gather(*(one() for _ in range(6)))
    assert sorted(code.name for code in codes) == ["OK"] * 2 + ["RESOURCE_EXHAUSTED"] * 4
    open_ids = await sessions.listed()
    await sessions.close(open_ids[0])
    assert (await sessions.create()).state == sessions_pb2.SESSION_STATE_ACTIVE


async def test_commands_go_to_the_sessions_agent_and_are_counted(
    scheduler: Scheduler, agents: Callable[..., asyncio.Future[ScriptedAgent]]
) -> None:
    agent = await agents("a")
    sessions = sessions_of(scheduler)
    session = await sessions.create()
    result = await sessions.run(
        session.id, url="https://example.com/", steps=[tasks_pb2.Step(click="#go")]
    )
    assert result.title == "Scripted page"
    verb, data = agent.orders[-1]
    assert verb is SessionOrder.RUN
    order = queue_pb2.SessionCommandOrder.FromString(data)
    assert order.session_id == session.id and order.command.timeout_ms == 30000
    assert (await sessions.get(session.id)).commands == 1


async def test_a_failed_command_answers_with_its_code(
    scheduler: Scheduler, agents: Callable[..., asyncio.Future[ScriptedAgent]]
) -> None:
    agent = await agents("a")
    sessions = sessions_of(scheduler)
    session = await sessions.create()
    agent.answer = refused("SELECTOR_NOT_FOUND")
    error = await rpc_error(sessions.run(session.id, steps=[tasks_pb2.Step(click="#x")]))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == "SELECTOR_NOT_FOUND: SELECTOR_NOT_FOUND!"
    agent.answer = refused("TIMEOUT")
    error = await rpc_error(sessions.run(session.id))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert (await sessions.get(session.id)).commands == 0


async def test_a_command_to_an_agent_that_neither_listens_nor_beats_ends_the_session_lost(
    scheduler: Scheduler, agents: Callable[..., asyncio.Future[ScriptedAgent]]
) -> None:
    agent = await agents("a")
    sessions = sessions_of(scheduler)
    session = await sessions.create()
    await agent.beat(age_seconds=60)
    await agent.stop_answering()
    error = await rpc_error(sessions.run(session.id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "closed (AGENT_LOST)" in (error.details() or "")
    closed = await sessions.get(session.id)
    assert (closed.state, closed.close_reason) == (sessions_pb2.SESSION_STATE_CLOSED, "AGENT_LOST")
    assert closed.cdp_url == ""


async def test_a_session_whose_agent_stops_beating_is_closed_as_agent_lost(
    scheduler: Scheduler, agents: Callable[..., asyncio.Future[ScriptedAgent]]
) -> None:
    agent = await agents("a")
    sessions = sessions_of(scheduler)
    session = await sessions.create()
    await agent.beat()  # lists the session; then the agent falls silent

    async def lost() -> bool:
        return (await sessions.get(session.id)).close_reason == "AGENT_LOST"

    await assert_eventually(lost, within=10, message="the session was not closed as lost")


async def test_an_agents_close_event_records_reason_and_recording(
    scheduler: Scheduler, queue: Queue, agents: Callable[..., asyncio.Future[ScriptedAgent]]
) -> None:
    agent = await agents("a")
    sessions = sessions_of(scheduler)
    session = await sessions.create(profile="shopper")
    # The agent loads and saves the profile in the storage service: the order names it only.
    order = queue_pb2.OpenSessionOrder.FromString(agent.orders[0][1])
    assert (order.spec.profile, order.profile_state) == ("shopper", b"")
    closed = queue_pb2.SessionClosed(
        event_id=uuid.uuid4().hex,
        session_id=session.id,
        tenant=scheduler.tenant,
        agent_id="a",
        reason="IDLE_TIMEOUT",
        recording=tasks_pb2.ArtifactRef(id="art_video", kind=tasks_pb2.ARTIFACT_KIND_VIDEO),
        commands=3,
    )
    closed.time.GetCurrentTime()
    for _ in range(2):  # a repeat changes nothing
        await queue.js.publish(
            closed_subject(session.id, "a"),
            closed.SerializeToString(),
            headers={"Nats-Msg-Id": uuid.uuid4().hex},
        )

    async def recorded() -> bool:
        return (await sessions.get(session.id)).state == sessions_pb2.SESSION_STATE_CLOSED

    await assert_eventually(recorded, within=10)
    record = await sessions.get(session.id)
    assert (record.close_reason, record.recording.id, record.commands) == (
        "IDLE_TIMEOUT",
        "art_video",
        3,
    )


async def test_close_goes_to_the_agent_and_a_closed_session_stays_closed(
    scheduler: Scheduler, agents: Callable[..., asyncio.Future[ScriptedAgent]]
) -> None:
    agent = await agents("a")
    sessions = sessions_of(scheduler)
    session = await sessions.create()

    def close_answer(verb: SessionOrder, data: bytes) -> queue_pb2.SessionReply:
        if verb is not SessionOrder.CLOSE:
            return opened(verb, data)
        order = queue_pb2.CloseSessionOrder.FromString(data)
        return queue_pb2.SessionReply(
            closed=queue_pb2.SessionClosed(
                session_id=order.session_id, tenant=order.tenant, reason=order.reason
            )
        )

    agent.answer = close_answer
    closed = await sessions.close(session.id)
    assert (closed.state, closed.close_reason) == (
        sessions_pb2.SESSION_STATE_CLOSED,
        "CLOSED_BY_USER",
    )
    assert sum(verb is SessionOrder.CLOSE for verb, _ in agent.orders) == 1
    assert (await sessions.close(session.id)).close_reason == "CLOSED_BY_USER"
    assert sum(verb is SessionOrder.CLOSE for verb, _ in agent.orders) == 1


async def test_another_tenant_finds_none_of_these_sessions(
    scheduler: Scheduler, agents: Callable[..., asyncio.Future[ScriptedAgent]]
) -> None:
    await agents("a")
    mine = await sessions_of(scheduler).create()
    channel = scheduler.channel
    theirs = Sessions(sessions_pb2_grpc.SessionServiceStub(channel), token("other", *SESSIONS))
    for call in (theirs.get(mine.id), theirs.run(mine.id), theirs.close(mine.id)):
        assert (await rpc_error(call)).code() == grpc.StatusCode.NOT_FOUND
    assert await theirs.listed() == []
    without_scope = Sessions(
        sessions_pb2_grpc.SessionServiceStub(channel), token(scheduler.tenant, "tasks.write")
    )
    assert (await rpc_error(without_scope.get(mine.id))).code() == grpc.StatusCode.PERMISSION_DENIED
