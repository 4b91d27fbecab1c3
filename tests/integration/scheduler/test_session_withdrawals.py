"""An opening the scheduler stops waiting for is withdrawn: the agent is told to close it.

The scheduler waits the open order's answer_within_ms and a margin; when it stops
waiting (no answer in time, or the caller gone) the agent may still be opening the
browser, and is sent a close for the session, so that no browser stays open that no
session row knows. The test plays an agent that never answers its open orders.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest
from nats.aio.msg import Msg

from farm.queue.v1 import queue_pb2
from farm.sessions.v1 import sessions_pb2
from farm_core.sessions import SessionOrder
from tests.helpers import assert_eventually
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import Scheduler, rpc_error
from tests.integration.scheduler.test_sessions import (
    ScriptedAgent,
    agents,
    scheduler,
    sessions_of,
)

pytestmark = pytest.mark.integration

__all__ = ["agents", "scheduler"]


@dataclass
class StillOpeningAgent(ScriptedAgent):
    """Takes open orders and never answers them, as an agent still opening the browser."""

    async def _on_order(self, message: Msg) -> None:
        verb = SessionOrder(message.subject.rsplit(".", 1)[1])
        self.orders.append((verb, message.data))


def session_ids_ordered(agent: ScriptedAgent, verb: SessionOrder) -> list[str]:
    """The session ids of the orders of `verb` the agent took, in order."""
    parse = queue_pb2.OpenSessionOrder if verb is SessionOrder.OPEN else queue_pb2.CloseSessionOrder
    return [parse.FromString(data).session_id for taken, data in agent.orders if taken is verb]


async def test_an_agent_that_did_not_answer_in_time_is_told_to_close_the_session(
    scheduler: Scheduler,
    queue: Queue,
    agents: Callable[..., asyncio.Future[ScriptedAgent]],
) -> None:
    slow = StillOpeningAgent(queue, "slow", concurrency=8)
    await slow.start()
    other = await agents("other", concurrency=2)
    try:
        session = await sessions_of(scheduler).create()
    finally:
        await slow.stop_answering()

    assert session.agent_id == "other"
    [open_order] = [
        queue_pb2.OpenSessionOrder.FromString(data)
        for verb, data in slow.orders
        if verb is SessionOrder.OPEN
    ]
    # The scheduler's wait (session_open_timeout_seconds) travels with the order.
    assert open_order.answer_within_ms == 2000
    assert session_ids_ordered(slow, SessionOrder.CLOSE) == [session.id]
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
