"""A session's close in SQL: the agent's own account replaces the scheduler's AGENT_LOST guess."""

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.db import async_database_url, create_engine, utcnow
from farm_core.errors import NotFound
from farm_core.sessions import CloseReason
from farm_scheduler.sessions.records import SessionRecord
from farm_scheduler.sessions.store import ReservationGone, SessionStore
from farm_scheduler.store import MIGRATIONS, VERSION_TABLE

RECORDING = tasks_pb2.ArtifactRef(id="art_video", kind=tasks_pb2.ARTIFACT_KIND_VIDEO)


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["version_table"] = VERSION_TABLE
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """The scheduler's database, migrated, in a SQLite file."""
    engine = create_engine(async_database_url("", tmp_path / "scheduler.db"))
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)
    yield engine
    await engine.dispose()


async def open_session(store: SessionStore) -> SessionRecord:
    spec = sessions_pb2.SessionSpec(record=True, max_lifetime_seconds=600)
    return await store.placed(await store.reserve("default", spec, None), "agent-1")


async def test_a_drained_agents_report_replaces_the_sweeps_agent_lost(
    engine: AsyncEngine,
) -> None:
    # A draining agent closes its sessions, then removes its heartbeat; the sweep can see
    # the heartbeat gone before the close's event is applied.
    store = SessionStore(engine)
    record = await open_session(store)
    await store.close(record.id, CloseReason.AGENT_LOST.value)

    closed = await store.close(
        record.id, CloseReason.AGENT_DRAINING.value, recording=RECORDING, reported=True
    )

    assert closed is not None
    assert (closed.close_reason, closed.recording.id) == ("AGENT_DRAINING", "art_video")


async def test_a_session_the_agent_closed_keeps_its_close(engine: AsyncEngine) -> None:
    store = SessionStore(engine)
    record = await open_session(store)
    await store.close(record.id, CloseReason.IDLE_TIMEOUT.value, recording=RECORDING, reported=True)

    lost = await store.close(record.id, CloseReason.AGENT_LOST.value)
    again = await store.close(record.id, CloseReason.BROWSER_CLOSED.value, reported=True)

    assert lost is not None and again is not None
    assert (again.close_reason, again.recording.id) == ("IDLE_TIMEOUT", "art_video")


async def test_a_session_being_placed_is_not_found_until_an_agent_holds_it(
    engine: AsyncEngine,
) -> None:
    store = SessionStore(engine)
    spec = sessions_pb2.SessionSpec(max_lifetime_seconds=600)
    reserved = await store.reserve("default", spec, None)

    with pytest.raises(NotFound):
        await store.get("default", reserved.id)
    assert await store.page("default", sessions_pb2.SESSION_STATE_UNSPECIFIED, 10, None) == []

    placed = await store.placed(reserved, "agent-1")
    assert (placed.state, placed.agent_id) == ("SESSION_STATE_ACTIVE", "agent-1")
    assert (await store.get("default", reserved.id)).agent_id == "agent-1"


async def test_an_agents_close_closes_only_a_session_that_agent_holds(
    engine: AsyncEngine,
) -> None:
    # An agent the scheduler gave up on (its answer came too late) closes the browser it
    # opened; meanwhile the session is being placed on another agent.
    store = SessionStore(engine)
    spec = sessions_pb2.SessionSpec(max_lifetime_seconds=600)
    reserved = await store.reserve("default", spec, None)
    abandoned = CloseReason.OPEN_ABANDONED.value

    await store.close(reserved.id, abandoned, reported=True, agent_id="too-late")
    placed = await store.placed(reserved, "next")
    assert placed.active, "a close by an agent that does not hold the session closed it"
    await store.close(reserved.id, abandoned, reported=True, agent_id="too-late")
    assert (await store.get("default", reserved.id)).active

    closed = await store.close(reserved.id, "IDLE_TIMEOUT", reported=True, agent_id="next")
    assert closed is not None and closed.close_reason == "IDLE_TIMEOUT"


async def test_only_reservations_older_than_the_cutoff_are_forgotten_once_and_placed_nowhere(
    engine: AsyncEngine,
) -> None:
    store = SessionStore(engine)
    # A replica that died while placing a session an hour ago left this one.
    an_hour_ago = SessionStore(engine, clock=lambda: utcnow() - dt.timedelta(hours=1))
    spec = sessions_pb2.SessionSpec(max_lifetime_seconds=7200)
    stale = await an_hour_ago.reserve("default", spec, None)
    long_open = await an_hour_ago.placed(await an_hour_ago.reserve("default", spec, None), "a")
    fresh = await store.reserve("default", spec, None)
    cutoff = utcnow() - dt.timedelta(minutes=10)

    forgotten = await store.forget_reservations(cutoff)

    assert [(record.id, record.tenant) for record in forgotten] == [(stale.id, "default")]
    assert await store.forget_reservations(cutoff) == []
    assert set(await store.by_ids([stale.id, long_open.id, fresh.id])) == {long_open.id, fresh.id}
    # The CreateSession that reserved it, had it lived on, finds it gone.
    with pytest.raises(ReservationGone):
        await store.placed(stale, "late-agent")
    assert (await store.placed(fresh, "agent-2")).agent_id == "agent-2"
