"""A batch's rows as the database holds them, on SQLite and PostgreSQL: the same as a single
create's, and the indexes a new task's INSERT writes to."""

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from farm_core.db import async_database_url
from farm_core.quotas import TenantQuotas
from farm_scheduler.batches import Accepted, store_batch
from farm_scheduler.store import TaskStore
from tests.integration.scheduler.conftest import stored_spec
from tests.postgres import POSTGRES_URL, create_database, drop_database, postgres_reachable

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 12, 5, 12, 30, 15, 123456, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TaskStore]:
    """A started TaskStore on each dialect, its clock stopped at NOW."""
    url = ""
    if request.param == "postgresql":
        if not postgres_reachable():
            pytest.skip(f"no PostgreSQL at {POSTGRES_URL}")
        url = await create_database()
    store = TaskStore(async_database_url(url, tmp_path / "scheduler.db"), clock=lambda: NOW)
    await store.start()
    try:
        yield store
    finally:
        await store.close()
        if url:
            await drop_database(url)


async def raw_rows(store: TaskStore) -> dict[str, dict[str, Any]]:
    """Every `tasks` row as the driver returns it (no SQLAlchemy types), by id."""
    async with store.engine.connect() as connection:
        result = await connection.exec_driver_sql("SELECT * FROM tasks")
        return {row.id: dict(row._mapping) for row in result}


async def test_a_batchs_rows_hold_what_a_single_create_writes(store: TaskStore) -> None:
    spec = stored_spec(
        labels={"job": "nightly", "team": "web"},
        deadline=f"{dt.datetime.now(dt.UTC) + dt.timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}",
        callbackUrl="https://hooks.example.com/done",
        cacheTtlSeconds=60,
    )
    quotas = TenantQuotas(max_queued_tasks=100, max_running_tasks=3, max_artifact_bytes=1000)

    single, _ = await store.create("acme", spec, quotas, trace_parent="")
    outcomes = await store_batch(store, "acme", [spec, spec, spec], quotas, ["", "", ""])

    rows = await raw_rows(store)
    batched = [outcome.record.id for outcome in outcomes if isinstance(outcome, Accepted)]
    assert len(batched) == 3 and len(rows) == 4
    expected = {**rows[single.id], "id": None}
    for task_id in batched:
        assert {**rows[task_id], "id": None} == expected
    # The batch's records are what a read gives back.
    for outcome in outcomes:
        assert isinstance(outcome, Accepted)
        assert await store.get("acme", outcome.record.id) == outcome.record


async def test_the_items_of_one_spec_keep_their_own_ids_and_trace_parents(
    store: TaskStore,
) -> None:
    spec = stored_spec()
    parents = [f"00-{index:032x}-{index:016x}-01" for index in range(1, 4)]

    outcomes = await store_batch(store, "acme", [spec, spec, spec], None, parents)

    records = [outcome.record for outcome in outcomes if isinstance(outcome, Accepted)]
    assert [record.trace_parent for record in records] == parents
    assert len({record.id for record in records}) == 3
    for record in records:
        assert await store.get("acme", record.id) == record


async def test_the_time_indexes_hold_only_tasks_with_that_time_and_serve_their_queries(
    tmp_path: Path,
) -> None:
    store = TaskStore(async_database_url("", tmp_path / "scheduler.db"))
    await store.start()
    try:
        async with store.engine.connect() as connection:
            listed = await connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
            )
            indexes: dict[str, str | None] = {row.name: row.sql for row in listed}
            plans = {
                query: " ".join(
                    str(row[-1])
                    for row in await connection.execute(text(f"EXPLAIN QUERY PLAN {query}"))
                )
                for query in (
                    # The sweeper's overdue tasks (store.overdue).
                    "SELECT id FROM tasks WHERE status = 'TASK_STATUS_QUEUED' "
                    "AND deadline IS NOT NULL AND deadline <= '2026-12-05' ORDER BY deadline",
                    # The fleet status's tasks ended lately (status.task_counts).
                    "SELECT status, count(*) FROM tasks WHERE status IN "
                    "('TASK_STATUS_SUCCEEDED', 'TASK_STATUS_FAILED') "
                    "AND finish_time >= '2026-12-05' GROUP BY status",
                    # A tenant's dead letters (store.dead_letters).
                    "SELECT * FROM tasks WHERE tenant = 'acme' AND status = 'TASK_STATUS_FAILED' "
                    "AND dead_time IS NOT NULL ORDER BY dead_time DESC, id DESC LIMIT 50",
                )
            }
    finally:
        await store.close()

    for name, column in (
        ("ix_tasks_status_deadline", "deadline"),
        ("ix_tasks_status_finish_time", "finish_time"),
        ("ix_tasks_tenant_dead_time_id", "dead_time"),
    ):
        assert (indexes[name] or "").endswith(f"WHERE {column} IS NOT NULL")
    overdue, ended, dead_letters = plans.values()
    assert "ix_tasks_status_deadline" in overdue
    assert "ix_tasks_status_finish_time" in ended
    assert "ix_tasks_tenant_dead_time_id" in dead_letters


async def test_the_time_indexes_are_partial_on_postgresql_under_their_own_names() -> None:
    if not postgres_reachable():
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}")
    url = await create_database()
    store = TaskStore(async_database_url(url, Path("unused.db")))
    await store.start()
    try:
        async with store.engine.connect() as connection:
            listed = await connection.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tasks'"
            )
            indexes = {row.indexname: row.indexdef for row in listed}
    finally:
        await store.close()
        await drop_database(url)

    for name, column in (
        ("ix_tasks_status_deadline", "deadline"),
        ("ix_tasks_status_finish_time", "finish_time"),
        ("ix_tasks_tenant_dead_time_id", "dead_time"),
    ):
        assert indexes[name].endswith(f"WHERE ({column} IS NOT NULL)")
    assert not [name for name in indexes if name.endswith("_partial")]
