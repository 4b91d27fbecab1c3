"""Migration 0014: labels stored with a NUL (before requests with one were refused) get U+FFFD."""

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.db import async_database_url
from farm_scheduler.models import SessionRow
from farm_scheduler.sessions.records import SessionRecord, row_values
from farm_scheduler.store import TaskStore
from tests.integration.scheduler.conftest import stored_spec
from tests.unit.scheduler.migration_steps import migrate

pytestmark = pytest.mark.integration

SESSION_ID = "s" * 32


async def store_rows_of_before_the_fix(store: TaskStore) -> tuple[str, str]:
    """A task with a NUL in a label value, one without; a session with one. Their ids."""
    spec = stored_spec(labels={"job": "a\x00b", "team": "web"})
    with_nul, _ = await store.create("acme", spec)
    clean, _ = await store.create("acme", stored_spec(labels={"team": "web"}))
    now = dt.datetime.now(dt.UTC)
    session = SessionRecord(
        id=SESSION_ID,
        tenant="acme",
        state="SESSION_STATE_ACTIVE",
        spec=sessions_pb2.SessionSpec(labels={"who": "\x00"}),
        agent_id="agent-a",
        create_time=now,
        expire_time=now + dt.timedelta(hours=1),
    )
    async with store.engine.begin() as connection:
        await connection.execute(sa.insert(SessionRow), [row_values(session)])
    return with_nul.id, clean.id


async def upgrade_keeps_labels_filterable(database_url: str) -> None:
    store = TaskStore(database_url)
    await store.start()
    try:
        with_nul, clean = await store_rows_of_before_the_fix(store)
        await migrate(store.engine, "0013", down=True)
    finally:
        await store.close()

    store = TaskStore(database_url)
    await store.start()  # upgrades to head, as a scheduler that starts does
    try:
        listed = await store.page(
            "acme",
            status=tasks_pb2.TASK_STATUS_UNSPECIFIED,
            labels=[("team", "web")],
            size=10,
            after=None,
        )
        found = await store.page(
            "acme",
            status=tasks_pb2.TASK_STATUS_UNSPECIFIED,
            labels=[("job", "a\ufffdb")],
            size=10,
            after=None,
        )
        async with store.engine.connect() as connection:
            session_labels = await connection.scalar(
                sa.select(SessionRow.labels).where(SessionRow.id == SESSION_ID)
            )
    finally:
        await store.close()

    assert {record.id for record in listed} == {with_nul, clean}
    assert [record.id for record in found] == [with_nul]
    assert session_labels == {"who": "\ufffd"}


async def test_upgrade_replaces_nul_in_labels_on_sqlite(tmp_path: Path) -> None:
    await upgrade_keeps_labels_filterable(async_database_url("", tmp_path / "scheduler.db"))


async def test_upgrade_replaces_nul_in_labels_on_postgresql(postgres_url: str) -> None:
    await upgrade_keeps_labels_filterable(async_database_url(postgres_url, Path("unused.db")))
