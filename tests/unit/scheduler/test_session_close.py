"""A session's close in SQL: the agent's own account replaces the scheduler's AGENT_LOST guess."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.db import async_database_url, create_engine
from farm_core.sessions import CloseReason
from farm_scheduler.sessions.records import SessionRecord
from farm_scheduler.sessions.store import SessionStore
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
