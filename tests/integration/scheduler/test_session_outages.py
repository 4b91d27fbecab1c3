"""SessionService when a part it needs fails under load: clear statuses, never INTERNAL.

The scheduler's own NATS connection gone, its database too busy to write, as a
loaded machine makes them, or an agent slow to answer a close; the test plays the
agent (scripted_agents).
"""

import asyncio
import contextlib
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from nats.aio.msg import Msg

from farm.queue.v1 import queue_pb2
from farm.sessions.v1 import sessions_pb2
from farm_core.db import utcnow
from farm_core.sessions import SessionOrder
from farm_scheduler.sessions.closer import LIFETIME_GRACE_SECONDS
from farm_scheduler.sessions.records import SessionRecord
from farm_scheduler.sessions.store import SessionStore
from tests.helpers import assert_eventually
from tests.integration.scheduler import scripted_agents
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import Scheduler, StartScheduler, rpc_error
from tests.integration.scheduler.scripted_agents import AgentsFixture, ScriptedAgent, sessions_of

pytestmark = pytest.mark.integration
# The scheduler and the scripted agents, as fixtures here too.
scheduler = scripted_agents.scheduler
agents = scripted_agents.agents

# Longer than SQLite's busy timeout (farm_core.db), which a blocked write waits out.
LOCKED_RPC_TIMEOUT = 90.0
# The busy timeout the test gives the scheduler's connection, for farm_core.db's 10 s:
# a blocked write is refused the same way, sooner.
TEST_BUSY_TIMEOUT_MS = 1000


async def quick_to_give_up(scheduler: Scheduler) -> None:
    """The scheduler's SQLite connection (its pool's only one) waits TEST_BUSY_TIMEOUT_MS."""
    async with scheduler.service.store.engine.connect() as connection:
        await connection.exec_driver_sql(f"PRAGMA busy_timeout={TEST_BUSY_TIMEOUT_MS}")


@contextlib.asynccontextmanager
async def write_locked(database: Path) -> AsyncIterator[None]:
    """Holds the SQLite file's write lock, as another writer that takes too long.

    Taken off the event loop: the in-process scheduler may be in a write transaction
    that needs the loop to end, which a lock taken on it would wait out in vain.
    """
    connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    try:
        await asyncio.to_thread(connection.execute, "BEGIN IMMEDIATE")
        yield
    finally:
        connection.close()


async def test_a_command_the_schedulers_nats_cannot_send_is_unavailable_and_keeps_the_session(
    scheduler: Scheduler, agents: AgentsFixture
) -> None:
    await agents("a")
    sessions = sessions_of(scheduler)
    session = await sessions.create()
    # As a scheduler whose NATS connection is closed (its reconnects given up, or its stop).
    connection = scheduler.service._nc
    assert connection is not None
    await connection.close()

    error = await rpc_error(sessions.run(session.id))

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details() == (
        f"session {session.id}: the session run order for agent a could not be sent: "
        "the scheduler's NATS connection is closed; try again"
    )
    # Nothing is known of the agent: the session is not taken for lost.
    assert (await sessions.get(session.id)).state == sessions_pb2.SESSION_STATE_ACTIVE


async def test_a_command_that_ran_is_answered_though_the_database_is_too_busy_to_count_it(
    scheduler: Scheduler, agents: AgentsFixture
) -> None:
    agent = await agents("a")
    sessions = sessions_of(scheduler)
    session = await sessions.create()
    request = sessions_pb2.RunSessionCommandRequest(id=session.id)
    await quick_to_give_up(scheduler)

    async with write_locked(scheduler.settings.database_path("scheduler")):
        result = await sessions.stub.RunSessionCommand(
            request, metadata=sessions.metadata, timeout=LOCKED_RPC_TIMEOUT
        )

    assert result.title == "Scripted page"
    assert [verb for verb, _ in agent.orders].count(SessionOrder.RUN) == 1
    # Not counted: the agent's own count comes with the session's close.
    assert (await sessions.get(session.id)).commands == 0


def closed_as_ordered(order_data: bytes) -> queue_pb2.SessionReply:
    """An agent's answer to a close order: the session closed for the order's reason."""
    order = queue_pb2.CloseSessionOrder.FromString(order_data)
    closed = queue_pb2.SessionClosed(
        session_id=order.session_id, tenant=order.tenant, reason=order.reason
    )
    return queue_pb2.SessionReply(closed=closed)


@dataclass
class SlowToCloseAgent(ScriptedAgent):
    """Takes every close order at once and answers none until the test says."""

    may_answer: asyncio.Event = field(default_factory=asyncio.Event)
    answers: set[asyncio.Task[None]] = field(default_factory=set)

    async def _on_order(self, message: Msg) -> None:
        self.note(message)
        answer = asyncio.create_task(self._answer_when_told(message))
        self.answers.add(answer)
        answer.add_done_callback(self.answers.discard)

    async def _answer_when_told(self, message: Msg) -> None:
        await self.may_answer.wait()
        await message.respond(closed_as_ordered(message.data).SerializeToString())


async def expired_session(scheduler: Scheduler, agent: ScriptedAgent) -> SessionRecord:
    """A session on `agent`, past its lifetime by more than the sweep's grace; listed."""
    lifetime = 600
    ago = dt.timedelta(seconds=lifetime + LIFETIME_GRACE_SECONDS + 60)
    store = SessionStore(scheduler.service.store.engine, clock=lambda: utcnow() - ago)
    spec = sessions_pb2.SessionSpec(max_lifetime_seconds=lifetime)
    record = await store.placed(await store.reserve(scheduler.tenant, spec, None), agent.agent_id)
    agent.session_ids.append(record.id)
    await agent.beat()
    return record


async def test_an_agent_slow_to_answer_a_close_holds_up_no_other_sessions_close(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    scheduler = await start_scheduler(
        session_sweep_interval_seconds=0.2,
        session_close_timeout_seconds=120,
        session_agent_lost_seconds=60,
    )
    sessions = sessions_of(scheduler)
    slow = SlowToCloseAgent(queue, "slow")
    await slow.start()
    quick = await ScriptedAgent(
        queue, "quick", answer=lambda _, data: closed_as_ordered(data)
    ).start()
    try:
        held_up = await expired_session(scheduler, slow)
        await assert_eventually(
            lambda: len(slow.orders) == 1, within=10, message="no close ordered"
        )
        # Expired while the slow agent's close is under way: a later sweep closes it.
        expired = await expired_session(scheduler, quick)

        async def closed() -> bool:
            return (await sessions.get(expired.id)).state == sessions_pb2.SESSION_STATE_CLOSED

        await assert_eventually(closed, within=10, message="held up by the slow agent's close")
        assert (await sessions.get(expired.id)).close_reason == "MAX_LIFETIME"
        # The sweeps meanwhile ordered the slow agent's session closed only once.
        assert [verb for verb, _ in slow.orders] == [SessionOrder.CLOSE]
        assert (await sessions.get(held_up.id)).state == sessions_pb2.SESSION_STATE_ACTIVE
    finally:
        slow.may_answer.set()
        await slow.stop_answering()
        await quick.stop_answering()

    async def slow_closed() -> bool:
        return (await sessions.get(held_up.id)).close_reason == "MAX_LIFETIME"

    await assert_eventually(slow_closed, within=10, message="the slow agent's close not recorded")
