"""The scheduler's migrations: a database of the first revision is upgraded with its tasks kept."""

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from farm.tasks.v1 import tasks_pb2
from farm_core.db import async_database_url, create_engine
from farm_scheduler.store import TaskStore
from tests.unit.scheduler.migration_steps import migrate

FINISHED = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
async def first_revision_database(tmp_path: Path) -> AsyncIterator[str]:
    """A SQLite database at revision 0001 holding one failed and one queued task."""
    url = async_database_url("", tmp_path / "scheduler.db")
    engine = create_engine(url)
    await migrate(engine, "0001")
    spec = tasks_pb2.TaskSpec(url="https://example.com/", max_attempts=3, timeout_ms=30000)
    spec.screenshot.SetInParent()
    common = {
        "tenant": "acme",
        "spec": spec.SerializeToString(),
        "priority": "PRIORITY_NORMAL",
        "region": "",
        "labels": "{}",
        "idempotency_key": "",
        "agent_id": "agent-a",
        "create_time": FINISHED - dt.timedelta(minutes=1),
        "start_time": None,
        "result": b"",
        "error_message": "",
        "published": True,
    }
    rows = [
        {
            **common,
            "id": "f" * 32,
            "status": "TASK_STATUS_FAILED",
            "attempts": 3,
            "finish_time": FINISHED,
            "error_code": "TIMEOUT",
        },
        {
            **common,
            "id": "a" * 32,
            "status": "TASK_STATUS_QUEUED",
            "attempts": 0,
            "finish_time": None,
            "error_code": "",
        },
    ]
    columns = ", ".join(rows[0])
    values = ", ".join(f":{name}" for name in rows[0])
    async with engine.begin() as connection:
        for row in rows:
            await connection.execute(
                sa.text(f"INSERT INTO tasks ({columns}) VALUES ({values})"), row
            )
    await engine.dispose()
    yield url


async def test_upgrade_keeps_the_tasks_and_makes_earlier_failures_dead_letters(
    first_revision_database: str,
) -> None:
    store = TaskStore(first_revision_database)
    await store.start()
    try:
        failed = await store.get("acme", "f" * 32)
        queued = await store.get("acme", "a" * 32)
        letters = await store.dead_letters("acme", size=10, after=None)
    finally:
        await store.close()

    assert (failed.state.attempts, failed.state.error_code) == (3, "TIMEOUT")
    assert failed.state.dead_time == FINISHED
    # Never copied to FARM_DEAD, which did not exist when it failed.
    assert not failed.dead_letter_pending
    assert (queued.state.status, queued.state.history, queued.deadline) == (
        tasks_pb2.TASK_STATUS_QUEUED,
        (),
        None,
    )
    assert [letter.id for letter in letters] == ["f" * 32]
    # Accepted before tasks carried their tenant's running quota: unlimited.
    assert queued.tenant_max_running == 0


async def test_downgrade_returns_to_the_first_revision(first_revision_database: str) -> None:
    engine = create_engine(first_revision_database)
    try:
        await migrate(engine, "head")
        await migrate(engine, "0001", down=True)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            columns = await connection.run_sync(
                lambda sync: {column["name"] for column in sa.inspect(sync).get_columns("tasks")}
            )
            count = (await connection.execute(sa.text("SELECT count(*) FROM tasks"))).scalar()
    finally:
        await engine.dispose()

    assert "task_attempts" not in tables
    assert "dead_time" not in columns and "idempotency_key" in columns
    assert count == 2
