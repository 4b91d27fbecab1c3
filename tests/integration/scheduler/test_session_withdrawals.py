"""An opening the scheduler gave up on leaves no browser: the agent is told to close it.

The scheduler waits the open order's answer_within_ms and a margin; when it stops
waiting (no answer in time, or the caller gone) the agent may still be opening the
browser, and is sent a close for the session, so that no browser stays open that no
session row knows (closed with OPEN_ABANDONED). Its close changes no session the
scheduler placed elsewhere meanwhile, nor that session's route, which names the agent
the scheduler recorded (agents write no routes). Should that close be
lost, or the scheduler die before it recorded the agent's answer, the sweep closes the
browser once the agent has listed it for longer than a grace with no open session on
it claiming it. A CreateSession gives up once its session has been being placed for
the place timeout; the session a scheduler that died while placing it left (counted
against its tenant's quota) is forgotten by the sweep once it is a margin older than
that. The test plays the agents.
"""

import datetime as dt
from dataclasses import dataclass, field

import grpc
import pytest
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from farm.queue.v1 import queue_pb2
from farm.sessions.v1 import sessions_pb2
from farm_core.db import utcnow
from farm_core.quotas import TenantQuotas
from farm_core.sessions import SessionOrder, read_route, sessions_bucket
from farm_scheduler.sessions import orders
from farm_scheduler.sessions.closer import RESERVATION_MARGIN_SECONDS
from farm_scheduler.sessions.store import SessionStore, new_session_id
from tests.helpers import assert_eventually
from tests.integration.scheduler.agent_side import Queue, sessions_applied
from tests.integration.scheduler.conftest import (
    Scheduler,
    StartScheduler,
    rpc_error,
    sample,
)
from tests.integration.scheduler.scripted_agents import (
    ScriptedAgent,
    order_verb,
    scheduler,
    sessions_of,
)

pytestmark = pytest.mark.integration

__all__ = ["scheduler"]

UNCLAIMED = "farm_unclaimed_session_closes_total"
FORGOTTEN = "farm_session_reservations_forgotten_total"


async def publish_close(agent: ScriptedAgent, order: queue_pb2.CloseSessionOrder) -> None:
    """Publishes the SessionClosed event of `agent` closing the session as `order` says."""
    await agent.publish_closed(agent.closed(order.session_id, order.tenant, order.reason))


@dataclass
class StillOpeningAgent(ScriptedAgent):
    """Takes open orders and never answers them, as an agent still opening the browser.

    A close order for a session it took is answered as a real agent that opened the
    browser at last would: with its SessionClosed event, giving the order's reason.
    """

    async def _on_order(self, message: Msg) -> None:
        verb = self.note(message)
        if verb is SessionOrder.CLOSE:
            await publish_close(self, queue_pb2.CloseSessionOrder.FromString(message.data))


@dataclass
class LateOpeningAgent(ScriptedAgent):
    """Takes open orders and never answers them; each browser opens as its close comes.

    It closes the browser (its SessionClosed) when the test says.
    """

    late: list[queue_pb2.CloseSessionOrder] = field(default_factory=list)

    async def _on_order(self, message: Msg) -> None:
        verb = self.note(message)
        if verb is SessionOrder.CLOSE:
            self.late.append(queue_pb2.CloseSessionOrder.FromString(message.data))

    async def close_late_browsers(self) -> None:
        for order in self.late:
            await publish_close(self, order)


@dataclass
class AfterTheLateOneAgent(ScriptedAgent):
    """Opens every session once `late` has opened its browser."""

    late: LateOpeningAgent | None = None

    async def _on_order(self, message: Msg) -> None:
        if order_verb(message) is SessionOrder.OPEN and self.late is not None:
            late = self.late
            await assert_eventually(lambda: bool(late.late), within=10, message="not opened")
        await super()._on_order(message)


async def route_agent(routes: KeyValue, session_id: str) -> str:
    """The agent the session's route names."""
    route = (await read_route(routes, session_id)).value
    assert route is not None, f"session {session_id} has no route"
    return route.agent_id


def session_ids_ordered(agent: ScriptedAgent, verb: SessionOrder) -> list[str]:
    """The session ids of the orders of `verb` the agent took, in order."""
    parse = queue_pb2.OpenSessionOrder if verb is SessionOrder.OPEN else queue_pb2.CloseSessionOrder
    return [parse.FromString(data).session_id for taken, data in agent.orders if taken is verb]


async def test_an_agent_that_did_not_answer_in_time_is_told_to_close_the_session(
    start_scheduler: StartScheduler, queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scheduler waits past the open timeout by this, not 5 s: the agent's own bound
    # is never met here, the scheduler's wait alone ends the try.
    monkeypatch.setattr(orders, "OPEN_ANSWER_MARGIN_SECONDS", 0.5)
    # The scripted agents beat once: the session outlives the test rather than its agent.
    scheduler = await start_scheduler(
        session_agent_lost_seconds=60,
        session_open_timeout_seconds=2,
        session_close_timeout_seconds=2,
    )
    routes = await sessions_bucket(queue.js)
    slow = LateOpeningAgent(queue, "slow", concurrency=8)
    other = AfterTheLateOneAgent(queue, "other", concurrency=2, late=slow)
    await slow.start()
    await other.start()
    try:
        session = await sessions_of(scheduler).create()
    finally:
        await slow.stop_answering()
        await other.stop_answering()

    assert (session.state, session.agent_id) == (sessions_pb2.SESSION_STATE_ACTIVE, "other")
    [open_order] = [
        queue_pb2.OpenSessionOrder.FromString(data)
        for verb, data in slow.orders
        if verb is SessionOrder.OPEN
    ]
    # The scheduler's wait (session_open_timeout_seconds) travels with the order.
    assert open_order.answer_within_ms == 2000
    [close_order] = [
        queue_pb2.CloseSessionOrder.FromString(data)
        for verb, data in slow.orders
        if verb is SessionOrder.CLOSE
    ]
    assert (close_order.session_id, close_order.reason) == (session.id, "OPEN_ABANDONED")
    assert session_ids_ordered(other, SessionOrder.CLOSE) == []
    # The route is the placement's the scheduler recorded.
    assert await route_agent(routes, session.id) == "other"

    # The slow agent's browser, opened first, closes as abandoned: the route still names
    # the other agent, whose session stays open.
    await slow.close_late_browsers()
    await assert_eventually(
        lambda: sessions_applied(queue), within=10, message="no close event applied"
    )
    assert await route_agent(routes, session.id) == "other"
    current = await sessions_of(scheduler).get(session.id)
    assert (current.state, current.agent_id) == (sessions_pb2.SESSION_STATE_ACTIVE, "other")


async def test_a_create_whose_caller_gave_up_tells_the_agent_to_close_the_session(
    scheduler: Scheduler, queue: Queue
) -> None:
    slow = StillOpeningAgent(queue, "slow")
    await slow.start()
    sessions = sessions_of(scheduler)
    try:
        request = sessions_pb2.CreateSessionRequest()
        call = sessions.stub.CreateSession(request, metadata=sessions.metadata)
        # The caller gives up once the agent is opening, not after a fixed time: on a
        # loaded machine a short deadline could pass before the open order was sent,
        # and there would be nothing to withdraw.
        await assert_eventually(
            lambda: bool(session_ids_ordered(slow, SessionOrder.OPEN)),
            within=10,
            message="no open order reached the agent",
        )
        call.cancel()
        assert await call.code() == grpc.StatusCode.CANCELLED
        opened = session_ids_ordered(slow, SessionOrder.OPEN)

        def withdrawn() -> bool:
            return session_ids_ordered(slow, SessionOrder.CLOSE) == opened

        await assert_eventually(withdrawn, within=10, message="no close for the given-up opening")
    finally:
        await slow.stop_answering()
    assert await sessions.listed() == []


@dataclass
class ToldAgent(ScriptedAgent):
    """A scripted agent that also takes closes told with no answer awaited, and lists
    a session it closed no more."""

    async def _on_order(self, message: Msg) -> None:
        if message.reply:
            await super()._on_order(message)
            return
        self.note(message)
        closed = queue_pb2.CloseSessionOrder.FromString(message.data).session_id
        if closed in self.session_ids:
            self.session_ids.remove(closed)
            await self.beat()


async def test_browsers_no_open_session_claims_are_closed_after_a_grace(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    settings = {
        "session_sweep_interval_seconds": 0.2,
        "session_unclaimed_grace_seconds": 0.5,
        "session_agent_lost_seconds": 60,
    }
    # Two replicas sweep: each closes what it finds unclaimed for a whole grace.
    scheduler = await start_scheduler(**settings)
    await start_scheduler(**settings)
    agent = await ToldAgent(queue, "holder", concurrency=8).start()
    sessions = sessions_of(scheduler)
    claimed = await sessions.create()
    # The scheduler placing this one died before it recorded the agent's answer.
    spec = sessions_pb2.SessionSpec(max_lifetime_seconds=600)
    store = SessionStore(scheduler.service.store.engine)
    unplaced = await store.reserve(scheduler.tenant, spec, None)
    # This one's scheduler claimed its route and died before it recorded the placement;
    # the reservation was forgotten since: only the route names its tenant.
    forgotten = new_session_id()
    route = queue_pb2.SessionRoute(session_id=forgotten, tenant="acme", agent_id="holder")
    await (await sessions_bucket(queue.js)).put(forgotten, route.SerializeToString())
    before = {why: sample(UNCLAIMED, why=why) for why in ("unplaced", "no_session")}
    agent.session_ids += [unplaced.id, forgotten]
    try:
        await agent.beat()

        def closes() -> dict[str, queue_pb2.CloseSessionOrder]:
            told = [
                queue_pb2.CloseSessionOrder.FromString(data)
                for verb, data in agent.orders
                if verb is SessionOrder.CLOSE
            ]
            return {order.session_id: order for order in told}

        await assert_eventually(
            lambda: set(closes()) == {unplaced.id, forgotten},
            within=10,
            message=lambda: f"closes ordered: {closes()}",
        )
        # Counted before each close is ordered.
        assert all(sample(UNCLAIMED, why=why) > count for why, count in before.items())
    finally:
        await agent.stop_answering()
    told = closes()
    assert (told[unplaced.id].tenant, told[unplaced.id].reason) == (
        scheduler.tenant,
        "OPEN_ABANDONED",
    )
    assert (told[forgotten].tenant, told[forgotten].reason) == ("acme", "OPEN_ABANDONED")
    # The browser its session claims is listed as long, and not ordered closed (the
    # session's row would not show that: this agent reports no close).
    assert claimed.id in agent.session_ids and claimed.id not in told


async def test_a_create_past_the_place_timeout_gives_up_and_leaves_no_session(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    # The agent would be waited for 5 s and 5 s more; the search ends after 1 s.
    scheduler = await start_scheduler(
        session_open_timeout_seconds=5, session_place_timeout_seconds=1
    )
    slow = await StillOpeningAgent(queue, "slow").start()
    sessions = sessions_of(scheduler, TenantQuotas(max_open_sessions=1))
    try:
        error = await rpc_error(sessions.create())
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "FARM_SCHEDULER_SESSION_PLACE_TIMEOUT_SECONDS" in (error.details() or "")
        [opened] = session_ids_ordered(slow, SessionOrder.OPEN)
        await assert_eventually(
            lambda: session_ids_ordered(slow, SessionOrder.CLOSE) == [opened],
            message="no close for the given-up opening",
        )
    finally:
        await slow.stop_answering()
    assert await SessionStore(scheduler.service.store.engine).by_ids([opened]) == {}
    # Its place in the tenant's quota is free again.
    await ScriptedAgent(queue, "fast").start()
    assert (await sessions.create()).state == sessions_pb2.SESSION_STATE_ACTIVE


async def test_a_session_a_dead_scheduler_left_being_placed_is_forgotten_freeing_its_quota(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    place_seconds = 1.0
    settings = {
        "session_sweep_interval_seconds": 0.2,
        "session_place_timeout_seconds": place_seconds,
    }
    # Two replicas sweep: the session is forgotten (and counted) once.
    scheduler = await start_scheduler(**settings)
    await start_scheduler(**settings)
    engine = scheduler.service.store.engine
    live = SessionStore(engine)

    def reserved_ago(seconds: float) -> SessionStore:
        return SessionStore(engine, clock=lambda: utcnow() - dt.timedelta(seconds=seconds))

    spec = sessions_pb2.SessionSpec(max_lifetime_seconds=600)
    before = sample(FORGOTTEN)
    # Its scheduler died while placing it, a margin past the place timeout ago.
    left = await reserved_ago(place_seconds + RESERVATION_MARGIN_SECONDS + 5).reserve(
        scheduler.tenant, spec, None
    )
    # Placed by a live replica, just now; and by one whose clock is behind the others'.
    fresh = await live.reserve("other", spec, None)
    behind = await reserved_ago(place_seconds + RESERVATION_MARGIN_SECONDS - 30).reserve(
        "other", spec, None
    )
    await ScriptedAgent(queue, "roomy", concurrency=8).start()
    sessions = sessions_of(scheduler, TenantQuotas(max_open_sessions=1))

    async def forgotten() -> bool:
        return left.id not in await live.by_ids([left.id])

    await assert_eventually(forgotten, message="the dead scheduler's session is still there")
    assert sample(FORGOTTEN) == before + 1
    assert (await sessions.create()).state == sessions_pb2.SESSION_STATE_ACTIVE
    kept = await live.by_ids([fresh.id, behind.id])
    assert {record.id: record.agent_id for record in kept.values()} == {fresh.id: "", behind.id: ""}
