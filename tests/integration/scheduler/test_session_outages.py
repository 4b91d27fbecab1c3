"""SessionService when a part it needs fails under load: clear statuses, never INTERNAL.

The scheduler's own NATS connection gone, or its database too busy to write, as a
loaded machine makes them; the test plays the agent, as in test_sessions.
"""

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from farm.sessions.v1 import sessions_pb2
from farm_core.sessions import SessionOrder
from tests.integration.scheduler import test_sessions
from tests.integration.scheduler.conftest import Scheduler, rpc_error
from tests.integration.scheduler.test_sessions import AgentsFixture, sessions_of

pytestmark = pytest.mark.integration
# The scheduler and the scripted agents of test_sessions, as fixtures here too.
scheduler = test_sessions.scheduler
agents = test_sessions.agents

# Longer than SQLite's busy timeout (farm_core.db), which a blocked write waits out.
LOCKED_RPC_TIMEOUT = 90.0


@contextlib.contextmanager
def write_locked(database: Path) -> Iterator[None]:
    """Holds the SQLite file's write lock, as another writer that takes too long."""
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
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

    with write_locked(scheduler.settings.database_path("scheduler")):
        result = await sessions.stub.RunSessionCommand(
            request, metadata=sessions.metadata, timeout=LOCKED_RPC_TIMEOUT
        )

    assert result.title == "Scripted page"
    assert [verb for verb, _ in agent.orders].count(SessionOrder.RUN) == 1
    # Not counted: the agent's own count comes with the session's close.
    assert (await sessions.get(session.id)).commands == 0
