"""A closed session leaves no route: the scheduler, its only writer, removes it.

Agents do not touch routes. The scheduler removes a session's route as it applies the
close's event, while the route names that agent, and at once as it records a close an
agent's answer carries (so that a lost event leaves no route behind). The tests play
the agents, with the real nats-server and the scheduler's real route bucket.
"""

import uuid
from dataclasses import dataclass

import grpc
import pytest
from nats.aio.msg import Msg

from farm.queue.v1 import queue_pb2
from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.sessions import SessionOrder, closed_subject, read_route, sessions_bucket
from tests.helpers import assert_eventually
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import StartScheduler, rpc_error
from tests.integration.scheduler.scripted_agents import ScriptedAgent, order_verb, sessions_of
from tests.integration.scheduler.test_event_agents import sessions_applied

pytestmark = pytest.mark.integration


async def publish_closed(agent: ScriptedAgent, closed: queue_pb2.SessionClosed) -> None:
    """Publishes `closed` as the SessionClosed event of `agent`."""
    await agent.queue.js.publish(
        closed_subject(closed.session_id, agent.agent_id),
        closed.SerializeToString(),
        headers={"Nats-Msg-Id": closed.event_id},
    )


def closed_by(
    agent: ScriptedAgent, session_id: str, tenant: str, reason: str
) -> queue_pb2.SessionClosed:
    closed = queue_pb2.SessionClosed(
        event_id=uuid.uuid4().hex,
        session_id=session_id,
        tenant=tenant,
        agent_id=agent.agent_id,
        reason=reason,
    )
    closed.time.GetCurrentTime()
    return closed


@dataclass
class RouteKeepingAgent(ScriptedAgent):
    """Opens sessions; closes one as ordered, as a real agent does.

    Its answer to a close carries the SessionClosed, which it publishes as its event
    too (first, as the real agent does); it removes no route.
    """

    async def _on_order(self, message: Msg) -> None:
        if order_verb(message) is not SessionOrder.CLOSE:
            await super()._on_order(message)
            return
        self.note(message)
        order = queue_pb2.CloseSessionOrder.FromString(message.data)
        closed = closed_by(self, order.session_id, order.tenant, order.reason)
        await publish_closed(self, closed)
        await message.respond(queue_pb2.SessionReply(closed=closed).SerializeToString())


@pytest.mark.parametrize("how", ["its agent's own close", "CloseSession"])
async def test_a_closed_sessions_route_is_removed(
    how: str, start_scheduler: StartScheduler, queue: Queue
) -> None:
    # The agent beats once: the sweep must not close its session as lost meanwhile.
    scheduler = await start_scheduler(
        session_agent_lost_seconds=60,
        session_open_timeout_seconds=2,
        session_close_timeout_seconds=2,
    )
    agent = await RouteKeepingAgent(queue, "keeper").start()
    routes = await sessions_bucket(queue.js)
    sessions = sessions_of(scheduler)
    try:
        session = await sessions.create()
        route = await read_route(routes, session.id)
        assert route.value is not None and route.value.agent_id == "keeper"

        if how == "CloseSession":
            assert (await sessions.close(session.id)).close_reason == "CLOSED_BY_USER"
        else:
            closed = closed_by(agent, session.id, scheduler.tenant, "IDLE_TIMEOUT")
            await publish_closed(agent, closed)
    finally:
        await agent.stop_answering()

    await assert_eventually(
        lambda: sessions_applied(queue), within=10, message="no close event applied"
    )
    assert (await sessions.get(session.id)).state == sessions_pb2.SESSION_STATE_CLOSED
    assert (await read_route(routes, session.id)).value is None


@dataclass
class EventLosingAgent(ScriptedAgent):
    """Opens sessions; its answers to a close, and to a command for a session it closed
    (idle), carry the SessionClosed, but its events of those closes are lost."""

    async def _on_order(self, message: Msg) -> None:
        verb = order_verb(message)
        if verb is SessionOrder.CLOSE:
            self.note(message)
            order = queue_pb2.CloseSessionOrder.FromString(message.data)
            closed = closed_by(self, order.session_id, order.tenant, order.reason)
            await message.respond(queue_pb2.SessionReply(closed=closed).SerializeToString())
        elif verb is SessionOrder.RUN:
            self.note(message)
            command = queue_pb2.SessionCommandOrder.FromString(message.data)
            reply = queue_pb2.SessionReply(
                error=tasks_pb2.TaskError(code="SESSION_NOT_FOUND", message="closed idle"),
                closed=closed_by(self, command.session_id, command.tenant, "IDLE_TIMEOUT"),
            )
            await message.respond(reply.SerializeToString())
        else:
            await super()._on_order(message)


@pytest.mark.parametrize("how", ["CloseSession", "a command after its idle close"])
async def test_a_close_an_answer_carries_removes_the_route_though_its_event_is_lost(
    how: str, start_scheduler: StartScheduler, queue: Queue
) -> None:
    scheduler = await start_scheduler(
        session_agent_lost_seconds=60,
        session_open_timeout_seconds=2,
        session_close_timeout_seconds=2,
    )
    agent = await EventLosingAgent(queue, "loser").start()
    routes = await sessions_bucket(queue.js)
    sessions = sessions_of(scheduler)
    try:
        session = await sessions.create()
        assert (await read_route(routes, session.id)).value is not None

        if how == "CloseSession":
            assert (await sessions.close(session.id)).close_reason == "CLOSED_BY_USER"
        else:
            error = await rpc_error(sessions.run(session.id, url="http://127.0.0.1:9/"))
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert (await sessions.get(session.id)).close_reason == "IDLE_TIMEOUT"
    finally:
        await agent.stop_answering()

    # No event came: the answer's close alone removed the route.
    assert (await read_route(routes, session.id)).value is None
