"""An opening the scheduler stops waiting for is withdrawn: the agent is told to close it.

The scheduler waits the open order's answer_within_ms and a margin; when it stops
waiting (no answer in time, or the caller gone) the agent may still be opening the
browser, and is sent a close for the session, so that no browser stays open that no
session row knows (closed with OPEN_ABANDONED). Its close changes no session the
scheduler placed elsewhere meanwhile. The test plays an agent that never answers its
open orders.
"""

import uuid
from dataclasses import dataclass

import grpc
import pytest
from nats.aio.msg import Msg

from farm.queue.v1 import queue_pb2
from farm.sessions.v1 import sessions_pb2
from farm_core.sessions import SessionOrder, closed_subject
from tests.helpers import assert_eventually
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import Scheduler, rpc_error
from tests.integration.scheduler.test_event_agents import sessions_applied
from tests.integration.scheduler.test_sessions import (
    ScriptedAgent,
    scheduler,
    sessions_of,
)

pytestmark = pytest.mark.integration

__all__ = ["scheduler"]


@dataclass
class StillOpeningAgent(ScriptedAgent):
    """Takes open orders and never answers them, as an agent still opening the browser.

    A close order for a session it took is answered as a real agent that opened the
    browser at last would: with its SessionClosed event, giving the order's reason.
    """

    closes_published: int = 0

    async def _on_order(self, message: Msg) -> None:
        verb = SessionOrder(message.subject.rsplit(".", 1)[1])
        self.orders.append((verb, message.data))
        if verb is SessionOrder.CLOSE:
            order = queue_pb2.CloseSessionOrder.FromString(message.data)
            closed = queue_pb2.SessionClosed(
                event_id=uuid.uuid4().hex,
                session_id=order.session_id,
                tenant=order.tenant,
                agent_id=self.agent_id,
                reason=order.reason,
            )
            await self.queue.js.publish(
                closed_subject(order.session_id, self.agent_id),
                closed.SerializeToString(),
                headers={"Nats-Msg-Id": closed.event_id},
            )
            self.closes_published += 1


@dataclass
class AfterTheCloseAgent(ScriptedAgent):
    """Opens every session, answering only once `slow`'s close events are applied."""

    slow: StillOpeningAgent | None = None

    async def _on_order(self, message: Msg) -> None:
        verb = SessionOrder(message.subject.rsplit(".", 1)[1])
        if verb is SessionOrder.OPEN and self.slow is not None:
            slow = self.slow

            async def close_applied() -> bool:
                return slow.closes_published > 0 and await sessions_applied(self.queue)

            await assert_eventually(close_applied, within=10, message="no close event applied")
        await super()._on_order(message)


def session_ids_ordered(agent: ScriptedAgent, verb: SessionOrder) -> list[str]:
    """The session ids of the orders of `verb` the agent took, in order."""
    parse = queue_pb2.OpenSessionOrder if verb is SessionOrder.OPEN else queue_pb2.CloseSessionOrder
    return [parse.FromString(data).session_id for taken, data in agent.orders if taken is verb]


async def test_an_agent_that_did_not_answer_in_time_is_told_to_close_the_session(
    scheduler: Scheduler, queue: Queue
) -> None:
    slow = StillOpeningAgent(queue, "slow", concurrency=8)
    other = AfterTheCloseAgent(queue, "other", concurrency=2, slow=slow)
    await slow.start()
    await other.start()
    try:
        session = await sessions_of(scheduler).create()
    finally:
        await slow.stop_answering()
        await other.stop_answering()

    # The slow agent's close of the browser it opened after all does not close the
    # session the other agent was opening meanwhile.
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


async def test_a_create_whose_caller_gave_up_tells_the_agent_to_close_the_session(
    scheduler: Scheduler, queue: Queue
) -> None:
    slow = StillOpeningAgent(queue, "slow")
    await slow.start()
    sessions = sessions_of(scheduler)
    try:
        request = sessions_pb2.CreateSessionRequest()
        error = await rpc_error(
            sessions.stub.CreateSession(request, metadata=sessions.metadata, timeout=0.5)
        )
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        def withdrawn() -> bool:
            opened = session_ids_ordered(slow, SessionOrder.OPEN)
            return bool(opened) and session_ids_ordered(slow, SessionOrder.CLOSE) == opened

        await assert_eventually(withdrawn, within=10, message="no close for the given-up opening")
    finally:
        await slow.stop_answering()
    assert await sessions.listed() == []
