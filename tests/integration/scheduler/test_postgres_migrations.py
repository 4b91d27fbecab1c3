"""Upgrading the scheduler's database on PostgreSQL while tasks are being written."""

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_core.db import async_database_url, create_engine, migrate
from farm_scheduler.store import MIGRATIONS, VERSION_TABLE
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

PARTIAL_INDEXES = (
    "ix_tasks_status_deadline",
    "ix_tasks_status_finish_time",
    "ix_tasks_tenant_dead_time_id",
)
STEP = 30.0  # Bounds each wait on the database; never reached when all is well.


def head_revision() -> str:
    """The newest revision of the scheduler's migrations: where an upgrade ends."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


HEAD = head_revision()


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """The scheduler's engine on a fresh PostgreSQL database."""
    engine = create_engine(async_database_url(postgres_url, Path("unused.db")))
    try:
        yield engine
    finally:
        await engine.dispose()


Connect = Callable[[], Awaitable[asyncpg.Connection]]


@pytest.fixture
async def connect(postgres_url: str) -> AsyncIterator[Connect]:
    """Opens plain connections to the database (other writers), closed afterwards."""
    opened: list[asyncpg.Connection] = []

    async def new() -> asyncpg.Connection:
        connection = await asyncpg.connect(postgres_url)
        opened.append(connection)
        return connection

    try:
        yield new
    finally:
        for connection in opened:
            connection.terminate()


async def upgrade(engine: AsyncEngine, revision: str = "head", lock_timeout: float = 5.0) -> None:
    """Migrates as a starting scheduler does, to `revision`."""
    await asyncio.wait_for(migrate(engine, MIGRATIONS, VERSION_TABLE, lock_timeout, revision), STEP)


async def insert_task(connection: asyncpg.Connection, task_id: str) -> None:
    """Stores a queued task (only the columns every revision requires)."""
    await connection.execute(
        "INSERT INTO tasks (id, tenant, status, spec, priority, region, labels, "
        "idempotency_key, attempts, agent_id, create_time, result, error_code, "
        "error_message, published) VALUES ($1, 'acme', 'TASK_STATUS_QUEUED', '', "
        "'PRIORITY_NORMAL', '', '{}', '', 0, '', $2, '', '', '', false)",
        task_id,
        dt.datetime.now(dt.UTC),
    )


async def waiting_on_lock(observer: asyncpg.Connection, pid: int) -> bool:
    """Whether the backend `pid` is waiting for a lock."""
    wait = await observer.fetchval(
        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid
    )
    return bool(wait == "Lock")


async def index_build_waiting(observer: asyncpg.Connection) -> int | None:
    """The backend of the upgrade's index build, once it waits for the open write."""
    return await observer.fetchval(  # type: ignore[no-any-return]
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND query ILIKE 'CREATE INDEX%' AND wait_event_type = 'Lock'"
    )


async def partial_indexes(observer: asyncpg.Connection) -> dict[str, tuple[bool, bool]]:
    """The tasks' indexes named *_time*/*deadline*: (valid, partial) by name."""
    rows = await observer.fetch(
        "SELECT c.relname, i.indisvalid, i.indpred IS NOT NULL AS partial FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
        "WHERE t.relname = 'tasks' AND (c.relname LIKE '%deadline%' "
        "OR c.relname LIKE '%finish_time%' OR c.relname LIKE '%dead_time%')"
    )
    return {row["relname"]: (row["indisvalid"], row["partial"]) for row in rows}


async def test_tasks_stay_writable_while_the_upgrade_builds_their_indexes(
    engine: AsyncEngine, connect: Connect
) -> None:
    await upgrade(engine, "0010")
    open_writer, writer, observer = [await connect() for _ in range(3)]
    await insert_task(writer, "a" * 32)
    # A write in flight when the upgrade starts: every index build waits for it.
    open_write = open_writer.transaction()
    await open_write.start()
    await insert_task(open_writer, "b" * 32)
    upgrading = asyncio.create_task(upgrade(engine))
    try:
        await assert_eventually(
            lambda: index_build_waiting(observer), message="no index build began"
        )
        # A plain CREATE INDEX queued for its SHARE lock would hold this write off.
        inserting = asyncio.create_task(insert_task(writer, "c" * 32))
        pid = writer.get_server_pid()
        await assert_eventually(
            lambda: inserting.done() or waiting_on_lock(observer, pid),
            message="the write neither ended nor waited",
        )
        assert inserting.done(), "a task write waited for the upgrade's index build"
        await inserting
    finally:
        await open_write.commit()
        await upgrading

    indexes = await partial_indexes(observer)
    assert {name: indexes.get(name) for name in PARTIAL_INDEXES} == {
        name: (True, True) for name in PARTIAL_INDEXES
    }
    assert not [name for name in indexes if name.endswith("_partial")]
    assert await observer.fetchval("SELECT count(*) FROM tasks") == 3
    assert await observer.fetchval(f"SELECT version_num FROM {VERSION_TABLE}") == HEAD


async def test_an_upgrade_killed_during_an_index_build_heals_on_the_next_start(
    engine: AsyncEngine, connect: Connect
) -> None:
    await upgrade(engine, "0010")
    open_writer, observer = await connect(), await connect()
    open_write = open_writer.transaction()
    await open_write.start()
    await insert_task(open_writer, "b" * 32)
    upgrading = asyncio.create_task(upgrade(engine))
    await assert_eventually(lambda: index_build_waiting(observer), message="no index build began")
    pid = await index_build_waiting(observer)
    await observer.execute("SELECT pg_cancel_backend($1)", pid)
    with pytest.raises(DBAPIError, match="cancel"):
        await upgrading
    await open_write.commit()
    left = await partial_indexes(observer)
    assert left["ix_tasks_status_deadline_partial"] == (False, True)

    await upgrade(engine)

    indexes = await partial_indexes(observer)
    assert {name: indexes.get(name) for name in PARTIAL_INDEXES} == {
        name: (True, True) for name in PARTIAL_INDEXES
    }
    assert not [name for name in indexes if name.endswith("_partial")]
    assert await observer.fetchval(f"SELECT version_num FROM {VERSION_TABLE}") == HEAD


async def test_an_upgrade_behind_a_long_transaction_gives_up_instead_of_queueing_writers(
    engine: AsyncEngine, connect: Connect
) -> None:
    await upgrade(engine, "0009")
    reader, writer, observer = await connect(), await connect(), await connect()
    # A long report: 0010's ADD COLUMN (ACCESS EXCLUSIVE) must wait for it to end.
    long_read = reader.transaction()
    await long_read.start()
    await reader.fetchval("SELECT count(*) FROM tasks")

    with pytest.raises(DBAPIError, match="lock timeout"):
        await upgrade(engine, lock_timeout=0.05)

    await insert_task(writer, "a" * 32)
    assert await observer.fetchval(f"SELECT version_num FROM {VERSION_TABLE}") == "0009"
    await long_read.commit()
    await upgrade(engine)
    assert await observer.fetchval(f"SELECT version_num FROM {VERSION_TABLE}") == HEAD


async def test_replicas_starting_together_on_an_empty_database_both_start(
    postgres_url: str, connect: Connect
) -> None:
    url = async_database_url(postgres_url, Path("unused.db"))
    engines = [create_engine(url) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade(engine) for engine in engines))
    finally:
        for engine in engines:
            await engine.dispose()
    observer = await connect()
    assert await observer.fetchval(f"SELECT version_num FROM {VERSION_TABLE}") == HEAD
    indexes = await partial_indexes(observer)
    assert {name: indexes.get(name) for name in PARTIAL_INDEXES} == {
        name: (True, True) for name in PARTIAL_INDEXES
    }
