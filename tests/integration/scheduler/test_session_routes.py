"""A closed session leaves no route: the scheduler, its only writer, removes it.

Agents do not touch routes. The scheduler removes a session's route as it applies the
close's event, while the route names that agent, at once as it records a close an
agent's answer carries (so that a lost event leaves no route behind), and as it closes
a session as lost (AGENT_LOST). The tests play the agents, with the real nats-server
and the scheduler's real route bucket.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import grpc
import pytest
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from farm.queue.v1 import queue_pb2
from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.sessions import SessionOrder, read_route, sessions_bucket
from tests.helpers import assert_eventually
from tests.integration.scheduler.agent_side import Queue, sessions_applied
from tests.integration.scheduler.conftest import Scheduler, StartScheduler, rpc_error
from tests.integration.scheduler.scripted_agents import (
    ScriptedAgent,
    Sessions,
    order_verb,
    sessions_of,
)

pytestmark = pytest.mark.integration

# The agent beats once: unless a test says otherwise, the sweep must not close its
# session as lost meanwhile.
KEPT = {
    "session_agent_lost_seconds": 60,
    "session_open_timeout_seconds": 2,
    "session_close_timeout_seconds": 2,
}


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
        closed = self.closed(order.session_id, order.tenant, order.reason)
        await self.publish_closed(closed)
        await message.respond(queue_pb2.SessionReply(closed=closed).SerializeToString())


@dataclass
class EventLosingAgent(ScriptedAgent):
    """Opens sessions; its answers to a close, and to a command for a session it closed
    (idle), carry the SessionClosed, but its events of those closes are lost."""

    async def _on_order(self, message: Msg) -> None:
        verb = order_verb(message)
        if verb is SessionOrder.CLOSE:
            self.note(message)
            order = queue_pb2.CloseSessionOrder.FromString(message.data)
            closed = self.closed(order.session_id, order.tenant, order.reason)
            await message.respond(queue_pb2.SessionReply(closed=closed).SerializeToString())
        elif verb is SessionOrder.RUN:
            self.note(message)
            command = queue_pb2.SessionCommandOrder.FromString(message.data)
            reply = queue_pb2.SessionReply(
                error=tasks_pb2.TaskError(code="SESSION_NOT_FOUND", message="closed idle"),
                closed=self.closed(command.session_id, command.tenant, "IDLE_TIMEOUT"),
            )
            await message.respond(reply.SerializeToString())
        else:
            await super()._on_order(message)


@dataclass
class RestartedAgent(ScriptedAgent):
    """Opens sessions; then restarts (in the test's word) and knows none of them."""

    async def _on_order(self, message: Msg) -> None:
        if order_verb(message) is not SessionOrder.RUN:
            await super()._on_order(message)
            return
        self.note(message)
        error = tasks_pb2.TaskError(code="SESSION_NOT_FOUND", message="no such session")
        await message.respond(queue_pb2.SessionReply(error=error).SerializeToString())


@dataclass
class Routed:
    """One session placed on a scripted agent, its scheduler, and the route bucket."""

    scheduler: Scheduler
    agent: ScriptedAgent
    sessions: Sessions
    session: sessions_pb2.Session
    routes: KeyValue

    async def route(self) -> queue_pb2.SessionRoute | None:
        return (await read_route(self.routes, self.session.id)).value


PlaceOne = Callable[..., Awaitable[Routed]]


@pytest.fixture
async def place_one(start_scheduler: StartScheduler, queue: Queue) -> AsyncIterator[PlaceOne]:
    """Places one session on an agent of the given kind; the agent stops answering after."""
    started: list[ScriptedAgent] = []

    async def place(kind: type[ScriptedAgent], **settings: float) -> Routed:
        scheduler = await start_scheduler(**(KEPT | settings))
        agent = await kind(queue, "holder").start()
        started.append(agent)
        sessions = sessions_of(scheduler)
        session = await sessions.create()
        placed = Routed(scheduler, agent, sessions, session, await sessions_bucket(queue.js))
        route = await placed.route()
        assert route is not None and route.agent_id == "holder"
        return placed

    yield place
    for agent in started:
        await agent.stop_answering()


@pytest.mark.parametrize("how", ["its agent's own close", "CloseSession"])
async def test_a_closed_sessions_route_is_removed(
    how: str, place_one: PlaceOne, queue: Queue
) -> None:
    placed = await place_one(RouteKeepingAgent)
    if how == "CloseSession":
        assert (await placed.sessions.close(placed.session.id)).close_reason == "CLOSED_BY_USER"
    else:
        closed = placed.agent.closed(placed.session.id, placed.scheduler.tenant, "IDLE_TIMEOUT")
        await placed.agent.publish_closed(closed)
    await placed.agent.stop_answering()

    await assert_eventually(
        lambda: sessions_applied(queue), within=10, message="no close event applied"
    )
    assert (await placed.sessions.get(placed.session.id)).state == (
        sessions_pb2.SESSION_STATE_CLOSED
    )
    assert await placed.route() is None


@pytest.mark.parametrize("how", ["CloseSession", "a command after its idle close"])
async def test_a_close_an_answer_carries_removes_the_route_though_its_event_is_lost(
    how: str, place_one: PlaceOne
) -> None:
    placed = await place_one(EventLosingAgent)
    sessions, session_id = placed.sessions, placed.session.id
    if how == "CloseSession":
        assert (await sessions.close(session_id)).close_reason == "CLOSED_BY_USER"
    else:
        error = await rpc_error(sessions.run(session_id, url="http://127.0.0.1:9/"))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert (await sessions.get(session_id)).close_reason == "IDLE_TIMEOUT"
    await placed.agent.stop_answering()

    # No event came: the answer's close alone removed the route.
    assert await placed.route() is None


async def test_a_session_its_restarted_agent_knows_nothing_of_closes_lost_without_its_route(
    place_one: PlaceOne,
) -> None:
    placed = await place_one(RestartedAgent)
    error = await rpc_error(placed.sessions.run(placed.session.id, url="http://127.0.0.1:9/"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await placed.sessions.get(placed.session.id)).close_reason == "AGENT_LOST"
    assert await placed.route() is None


async def test_a_session_whose_agent_stopped_beating_closes_lost_without_its_route(
    place_one: PlaceOne,
) -> None:
    placed = await place_one(
        ScriptedAgent, session_agent_lost_seconds=1.5, session_sweep_interval_seconds=0.2
    )

    # The route goes just after the row is closed: both are waited for.
    async def lost_without_route() -> bool:
        current = await placed.sessions.get(placed.session.id)
        return current.close_reason == "AGENT_LOST" and await placed.route() is None

    await assert_eventually(
        lost_without_route, within=10, message="the session was not closed as lost, its route gone"
    )
