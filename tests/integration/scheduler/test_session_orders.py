"""The scheduler's session orders over a real nats-server: a command whose agent died, or
that went unanswered while NATS stalled."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core import queue
from farm_core.nats_access import NatsAccess
from farm_core.queue import MAX_OUTSTANDING_PINGS, connect
from farm_core.sessions import Refusal, SessionOrder, order_subject
from farm_scheduler.sessions import orders
from farm_scheduler.sessions.orders import (
    AgentGone,
    AgentOrders,
    AgentSilent,
)
from tests.conftest import NatsServer

pytestmark = pytest.mark.integration

COMMAND_TIMEOUT_SECONDS = 30.0
# Probes sooner than the scheduler's own: a probe that goes unanswered is only sent again.
PROBE_SECONDS = 0.3
# A few probes, with room for a loaded machine: far less than the command's own timeout.
ANSWERED_WITHIN_SECONDS = 3 * PROBE_SECONDS + 3
# The scheduler's connection pings this often here (PING_INTERVAL_SECONDS in a farm):
# the same unanswered pings drop it, sooner.
TEST_PING_INTERVAL_SECONDS = 0.5
ORDER = queue_pb2.SessionCommandOrder(session_id="ses_0123456789abcdef", tenant="default")


@pytest.fixture
async def agent(nats_server: Any) -> AsyncIterator[Client]:
    """The connection of a stand-in agent (closed by the tests that let it die)."""
    client = await nats.connect(nats_server.url)
    try:
        yield client
    finally:
        if not client.is_closed:
            await client.close()


async def swallow(message: Msg) -> None:
    """Takes an order and never answers, as an agent killed just after it arrived."""


def orders_of(nc: Client) -> AgentOrders:
    return AgentOrders(
        nc, open_timeout_seconds=5, close_timeout_seconds=5, hold_probe_seconds=PROBE_SECONDS
    )


async def test_a_command_whose_agent_dies_ends_as_agent_gone_within_seconds(
    nc: Client, agent: Client
) -> None:
    arrived = asyncio.Event()

    async def take_and_die(message: Msg) -> None:
        arrived.set()

    await agent.subscribe(order_subject("agent-x", SessionOrder.RUN), cb=take_and_die)
    await agent.flush()
    started = time.monotonic()
    running = asyncio.create_task(orders_of(nc).run("agent-x", ORDER, COMMAND_TIMEOUT_SECONDS))
    # Dies once the command is in its hands (before, the order would find nobody at all).
    async with asyncio.timeout(10):
        await arrived.wait()
    await agent.close()

    with pytest.raises(AgentGone):
        await running
    assert time.monotonic() - started < ANSWERED_WITHIN_SECONDS


async def test_a_command_whose_agent_restarted_without_the_session_is_answered_not_found(
    nc: Client, agent: Client
) -> None:
    async def not_held(message: Msg) -> None:
        error = tasks_pb2.TaskError(code=Refusal.SESSION_NOT_FOUND, message="not open here")
        await message.respond(queue_pb2.SessionReply(error=error).SerializeToString())

    await agent.subscribe(order_subject("agent-x", SessionOrder.RUN), cb=swallow)
    await agent.subscribe(order_subject("agent-x", SessionOrder.HOLD), cb=not_held)
    await agent.flush()
    started = time.monotonic()

    reply = await orders_of(nc).run("agent-x", ORDER, COMMAND_TIMEOUT_SECONDS)

    assert reply.error.code == Refusal.SESSION_NOT_FOUND
    assert time.monotonic() - started < ANSWERED_WITHIN_SECONDS


async def test_a_slow_command_of_an_agent_that_holds_the_session_gets_its_answer(
    nc: Client, agent: Client
) -> None:
    probes: list[str] = []

    async def held(message: Msg) -> None:
        probes.append(queue_pb2.HoldSessionProbe.FromString(message.data).session_id)
        await message.respond(queue_pb2.SessionReply().SerializeToString())

    async def slow_answer(message: Msg) -> None:
        await asyncio.sleep(2.5 * PROBE_SECONDS)
        result = tasks_pb2.TaskResult(text="done")
        await message.respond(queue_pb2.SessionReply(result=result).SerializeToString())

    # Its own callback per subject: nats-py runs one subscription's callbacks in turn.
    await agent.subscribe(order_subject("agent-x", SessionOrder.RUN), cb=slow_answer)
    await agent.subscribe(order_subject("agent-x", SessionOrder.HOLD), cb=held)
    await agent.flush()

    reply = await orders_of(nc).run("agent-x", ORDER, COMMAND_TIMEOUT_SECONDS)

    assert reply.result.text == "done"
    assert probes and set(probes) == {ORDER.session_id}


class FoundNobody(logging.Handler):
    """Set when the scheduler says an order found nobody listening (before it waits to retry)."""

    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("nobody listened to "):
            self.event.set()


@pytest.fixture
def found_nobody() -> Iterator[asyncio.Event]:
    """Set the moment an order's first try found nobody listening."""
    logger = logging.getLogger(orders.__name__)
    handler = FoundNobody()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler.event
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_an_order_that_found_nobody_listening_goes_once_more(
    nc: Client, agent: Client, found_nobody: asyncio.Event
) -> None:
    # As an agent whose NATS connection just came back: it subscribes again a moment later.
    async def closed(message: Msg) -> None:
        await message.respond(queue_pb2.SessionReply().SerializeToString())

    order = queue_pb2.CloseSessionOrder(session_id=ORDER.session_id, tenant=ORDER.tenant)
    closing = asyncio.create_task(orders_of(nc).close("agent-late", order))
    # Only once the first try found nobody: the order must go once more to be answered.
    async with asyncio.timeout(10):
        await found_nobody.wait()
    await agent.subscribe(order_subject("agent-late", SessionOrder.CLOSE), cb=closed)
    await agent.flush()

    reply = await closing
    assert not reply.HasField("error")


async def test_a_garbled_answer_to_a_hold_probe_is_no_verdict_and_the_command_gets_its_answer(
    nc: Client, agent: Client
) -> None:
    probes: list[bytes] = []

    async def garbled(message: Msg) -> None:
        probes.append(message.data)
        await message.respond(b"\xff\xff\xff\xff")

    async def slow_answer(message: Msg) -> None:
        await asyncio.sleep(2.5 * PROBE_SECONDS)
        result = tasks_pb2.TaskResult(text="done")
        await message.respond(queue_pb2.SessionReply(result=result).SerializeToString())

    await agent.subscribe(order_subject("agent-x", SessionOrder.RUN), cb=slow_answer)
    await agent.subscribe(order_subject("agent-x", SessionOrder.HOLD), cb=garbled)
    await agent.flush()

    reply = await orders_of(nc).run("agent-x", ORDER, COMMAND_TIMEOUT_SECONDS)

    assert reply.result.text == "done"
    assert probes


async def test_a_command_unanswered_while_nats_stalled_says_the_connection_was_lost(
    fresh_nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real trial's SIGSTOPped nats-server made a command fail after its 40 s saying
    # only that its agent did not answer, which sent the operator to a healthy agent.
    monkeypatch.setattr(queue, "PING_INTERVAL_SECONDS", TEST_PING_INTERVAL_SECONDS)
    agent = await nats.connect(fresh_nats_server.url)
    scheduler = await connect(NatsAccess(fresh_nats_server.url), "farm-test-scheduler")
    try:
        await agent.subscribe(order_subject("agent-x", SessionOrder.RUN), cb=swallow)
        await agent.subscribe(order_subject("agent-x", SessionOrder.HOLD), cb=swallow)
        await agent.flush()
        # Past the three unanswered pings that drop the scheduler's connection.
        timeout = (MAX_OUTSTANDING_PINGS + 1) * TEST_PING_INTERVAL_SECONDS + 3
        async with fresh_nats_server.stalled():
            with pytest.raises(AgentSilent) as silent:
                await orders_of(scheduler).run("agent-x", ORDER, timeout)
        assert str(silent.value) == (
            f"agent agent-x did not answer a session run within {timeout:g} s, and the "
            "scheduler's NATS connection was lost meanwhile (NATS stopped, stalled or out of "
            "reach): the order or its answer may not have got through, the agent may be well, "
            "and the command may have run"
        )
    finally:
        await scheduler.close()
        await agent.close()


async def test_a_command_unanswered_over_a_steady_connection_blames_the_agent_alone(
    nc: Client, agent: Client
) -> None:
    await agent.subscribe(order_subject("agent-x", SessionOrder.RUN), cb=swallow)
    await agent.subscribe(order_subject("agent-x", SessionOrder.HOLD), cb=swallow)
    await agent.flush()
    with pytest.raises(AgentSilent) as silent:
        await orders_of(nc).run("agent-x", ORDER, 1.0)
    assert str(silent.value) == "agent agent-x did not answer a session run within 1 s"
