"""SessionService's statuses for what goes wrong on the way to the agent, and whose fault it is.

A command too large for one NATS message is the caller's (INVALID_ARGUMENT, nothing
sent); a garbled answer, an agent that does not listen for a moment, or the agent's
own INTERNAL error are the farm's, and none of them closes a session whose agent
still beats. The test plays the agent over the real nats-server (scripted_agents).
"""

import grpc
import pytest

from farm.queue.v1 import queue_pb2
from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.sessions import SessionOrder
from farm_scheduler.sessions.validation import validate_command
from tests.helpers import evaluate_steps
from tests.integration.scheduler import scripted_agents
from tests.integration.scheduler.conftest import Scheduler, StartScheduler, rpc_error
from tests.integration.scheduler.scripted_agents import (
    AgentsFixture,
    ScriptedAgent,
    opened,
    refused,
    sessions_of,
)

pytestmark = pytest.mark.integration
# The scripted agents, as a fixture here too.
agents = scripted_agents.agents

ACTIVE = sessions_pb2.SESSION_STATE_ACTIVE
# Not a SessionReply: a field tag whose varint never ends.
GARBLED = b"\xff\xff\xff\xff"


@pytest.fixture
async def scheduler(start_scheduler: StartScheduler) -> Scheduler:
    """A scheduler that takes an agent for lost only after a minute without heartbeats.

    The scripted agents beat once: a session must not be swept away while a test runs.
    """
    return await start_scheduler(
        session_agent_lost_seconds=60,
        session_open_timeout_seconds=2,
        session_close_timeout_seconds=2,
    )


def order_bytes(scheduler: Scheduler, session_id: str, steps: list[tasks_pb2.Step]) -> int:
    """How many bytes the run order of a command of `steps` is, as the scheduler sends it."""
    command = validate_command(
        sessions_pb2.SessionCommand(steps=steps), scheduler.settings.default_timeout_ms
    )
    order = queue_pb2.SessionCommandOrder(
        session_id=session_id, tenant=scheduler.tenant, command=command
    )
    return order.ByteSize()


def runs(agent: ScriptedAgent) -> int:
    return [verb for verb, _ in agent.orders].count(SessionOrder.RUN)


async def test_a_command_far_over_one_nats_message_is_invalid_argument_and_sends_nothing(
    scheduler: Scheduler, agents: AgentsFixture
) -> None:
    agent = await agents("a")
    sessions = sessions_of(scheduler)
    session = await sessions.create()

    error = await rpc_error(sessions.run(session.id, steps=evaluate_steps(1_300_000)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error.details() or ""
    assert details.startswith("command: 1.24 MiB ("), details
    assert "over the 1 MiB limit of one message to an agent" in details
    assert runs(agent) == 0
    # The session is as it was: the next command runs.
    assert (await sessions.run(session.id)).title == "Scripted page"
    assert (await sessions.get(session.id)).state == ACTIVE


async def test_a_command_that_fits_only_without_its_headers_is_refused_before_it_is_sent(
    scheduler: Scheduler, agents: AgentsFixture
) -> None:
    # nats-server counts a message's headers in its max_payload and drops the
    # connection of a client that sends more; the client checks the payload alone.
    agent = await agents("a")
    sessions = sessions_of(scheduler)
    session = await sessions.create()
    nc = scheduler.service._nc
    assert nc is not None
    steps = evaluate_steps(nc.max_payload)
    last = steps[-1].evaluate
    surplus = order_bytes(scheduler, session.id, steps) - (nc.max_payload - 4)
    steps[-1] = tasks_pb2.Step(evaluate=last[: len(last) - surplus])
    assert order_bytes(scheduler, session.id, steps) == nc.max_payload - 4

    error = await rpc_error(sessions.run(session.id, steps=steps))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("command: "), error.details()
    assert runs(agent) == 0
    assert nc.is_connected
    assert (await sessions.run(session.id)).title == "Scripted page"


async def test_a_garbled_answer_fails_the_command_and_keeps_the_session(
    scheduler: Scheduler, agents: AgentsFixture
) -> None:
    agent = await agents("a")
    sessions = sessions_of(scheduler)
    session = await sessions.create()

    def garbled_run(verb: SessionOrder, data: bytes) -> queue_pb2.SessionReply | bytes:
        return GARBLED if verb is SessionOrder.RUN else opened(verb, data)

    agent.answer = garbled_run
    error = await rpc_error(sessions.run(session.id))

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "agent a answered the session run order with something that is not a SessionReply" in (
        error.details() or ""
    )
    assert (await sessions.get(session.id)).state == ACTIVE
    agent.answer = opened
    assert (await sessions.run(session.id)).title == "Scripted page"


async def test_a_command_to_an_agent_that_beats_but_does_not_listen_keeps_the_session(
    scheduler: Scheduler, agents: AgentsFixture
) -> None:
    # As an agent whose NATS connection is coming back: it beat a moment ago.
    agent = await agents("a")
    sessions = sessions_of(scheduler)
    session = await sessions.create()
    await agent.stop_answering()

    error = await rpc_error(sessions.run(session.id))

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    details = error.details() or ""
    assert "agent a does not answer" in details and "try again" in details, details
    assert (await sessions.get(session.id)).state == ACTIVE
    await agent.start()
    assert (await sessions.run(session.id)).title == "Scripted page"


async def test_an_agents_internal_error_is_internal_not_the_callers_precondition(
    scheduler: Scheduler, agents: AgentsFixture
) -> None:
    agent = await agents("a")
    sessions = sessions_of(scheduler)
    session = await sessions.create()
    agent.answer = refused("INTERNAL")

    error = await rpc_error(sessions.run(session.id))

    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "INTERNAL: INTERNAL!"
    # A step's own failure stays the caller's precondition.
    agent.answer = refused("SELECTOR_NOT_FOUND")
    error = await rpc_error(sessions.run(session.id, steps=[tasks_pb2.Step(click="#x")]))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await sessions.get(session.id)).state == ACTIVE


async def test_an_agent_that_cannot_read_the_open_order_is_internal(
    scheduler: Scheduler, agents: AgentsFixture
) -> None:
    await agents("a", answer=refused("INVALID_ORDER"))

    error = await rpc_error(sessions_of(scheduler).create())

    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "INVALID_ORDER: INVALID_ORDER!"
