"""Each tenant's artifacts and bytes by kind, the totals its byte quota and the gauges read.

An upload's quota check reads the tenant's totals instead of summing its artifacts,
and the gauges add up the totals instead of counting every artifact, so the totals
must follow every write: new artifacts, replacements, deletes, artifacts stored
before the totals existed, and on PostgreSQL two writes of a tenant at once (also two
replacements that move artifacts between its rows in opposite directions). Real
storage service, SeaweedFS and SQL (SQLite and PostgreSQL).
"""

import asyncio
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from farm.tasks.v1 import tasks_pb2
from farm_core.cancel import cancel_and_wait
from farm_core.db import async_database_url, create_engine, migrate
from farm_storage.attempts import UNCHECKED
from farm_storage.models import ArtifactRow
from farm_storage.reservations import totals
from farm_storage.store import (
    MIGRATIONS,
    VERSION_TABLE,
    ArtifactContent,
    ArtifactRecord,
    ArtifactStore,
    artifacts,
)
from tests.helpers import assert_eventually, sql_statements
from tests.integration.storage.conftest import Storage, token

pytestmark = pytest.mark.integration

Totals = dict[tuple[str, str], tuple[int, int]]


async def kept_and_counted(database_url: str) -> tuple[Totals, Totals]:
    """(artifacts, bytes) by tenant and kind: as the totals keep them, as counted now."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            kept = await connection.execute(
                select(totals.c.tenant, totals.c.kind, totals.c.artifacts, totals.c.stored_bytes)
            )
            counted = await connection.execute(
                select(
                    artifacts.c.tenant,
                    artifacts.c.kind,
                    func.count(),
                    func.sum(artifacts.c.size_bytes),
                ).group_by(artifacts.c.tenant, artifacts.c.kind)
            )
            return (
                {(tenant, kind): (int(n), int(size)) for tenant, kind, n, size in kept if n},
                {(tenant, kind): (int(n), int(size)) for tenant, kind, n, size in counted},
            )
    finally:
        await engine.dispose()


async def test_the_totals_follow_uploads_replacements_and_deletes(storage: Storage) -> None:
    tenant, other = storage.tenant, f"{storage.tenant}-other"
    first = (await storage.upload("task-1", "shot", b"a" * 60, attempt=1)).artifact
    await storage.upload("task-2", "shot", b"b" * 30)
    await storage.upload("task-1", "shot", b"c" * 10, attempt=2)  # replaced by a smaller one
    await storage.upload("task-2", "shot", b"d" * 45)  # by a larger one
    await storage.upload("task-3", "page", b"e" * 8)
    # By another kind.
    await storage.upload(
        "task-3", "page", b"f" * 9, content_type="text/html", kind=tasks_pb2.ARTIFACT_KIND_CONTENT
    )
    await storage.upload("task-4", "page", b"g" * 7, tenant=other)
    await storage.delete(first.id, token(tenant, "tasks.write"))
    # A later attempt stored first: this one writes nothing, its bytes count nowhere.
    await storage.upload("task-5", "shot", b"h" * 5, attempt=2)
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await storage.upload("task-5", "shot", b"i" * 50, attempt=1)

    kept, counted = await kept_and_counted(storage.database_url)

    assert stale.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    screenshots, pages = "ARTIFACT_KIND_SCREENSHOT", "ARTIFACT_KIND_CONTENT"
    assert kept[tenant, screenshots] == (2, 45 + 5)
    assert kept[tenant, pages] == (1, 9)
    assert kept[other, screenshots] == (1, 7)
    assert {key: kept[key] for key in counted} == counted


async def test_artifacts_stored_before_the_totals_existed_are_counted(
    database_url: str, tmp_path: Path
) -> None:
    url = async_database_url(database_url, tmp_path / "storage.db")
    engine = create_engine(url)
    try:
        # The tables as the last release without totals left them, with its artifacts.
        await migrate(engine, MIGRATIONS, VERSION_TABLE, revision="0004")
        async with engine.begin() as connection:
            for tenant, size in (("acme", 100), ("acme", 23), ("umbrella", 5)):
                await connection.execute(insert(ArtifactRow).values(**_artifact(tenant, size)))

        await migrate(engine, MIGRATIONS, VERSION_TABLE)
    finally:
        await engine.dispose()

    kept, counted = await kept_and_counted(url)
    screenshots = "ARTIFACT_KIND_SCREENSHOT"
    assert kept == counted == {("acme", screenshots): (2, 123), ("umbrella", screenshots): (1, 5)}


async def writers_waiting_for_a_lock(engine: AsyncEngine) -> int:
    """How many sessions of this database wait for a lock another one holds."""
    # A connection of its own each time: a transaction sees pg_stat_activity as it first read it.
    async with engine.connect() as connection:
        waiting = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(waiting or 0)


async def test_a_write_that_waits_for_another_of_its_tenant_adds_to_what_that_one_wrote(
    postgres_url: str, tmp_path: Path
) -> None:
    # Two uploads of one tenant commit together: the second's trigger must wait for the
    # first's row of totals and add to it, not to what it read before that one committed.
    engine = create_engine(async_database_url(postgres_url, tmp_path / "unused.db"))
    try:
        await migrate(engine, MIGRATIONS, VERSION_TABLE)
        async with engine.begin() as connection:
            await connection.execute(insert(ArtifactRow).values(**_artifact("acme", 100)))
        async with engine.connect() as first, engine.connect() as second:
            await first.execute(insert(ArtifactRow).values(**_artifact("acme", 20)))
            # Its trigger now, not at commit: it holds the tenant's row until it commits.
            await first.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))

            async def write_second() -> None:
                await second.execute(insert(ArtifactRow).values(**_artifact("acme", 3)))
                await second.commit()

            writing = asyncio.create_task(write_second())
            try:
                await assert_eventually(
                    lambda: writers_waiting_for_a_lock(engine),
                    message="the second write never waited for the first's row of totals",
                )
                await first.commit()
                await asyncio.wait_for(writing, 10)
            finally:
                await cancel_and_wait(writing, "the second write")
    finally:
        await engine.dispose()

    kept, counted = await kept_and_counted(async_database_url(postgres_url, tmp_path))
    assert kept == counted == {("acme", "ARTIFACT_KIND_SCREENSHOT"): (3, 123)}


async def test_two_replacements_that_swap_kinds_both_commit(
    postgres_url: str, tmp_path: Path
) -> None:
    # One replacement moves an artifact from pages to screenshots while another moves one
    # back: each changes the tenant's two rows of totals. Taken in opposite orders, each
    # would hold one row and wait for the other's (PostgreSQL aborts one as deadlocked).
    # A session that holds the pages row lines them up: the first waits for it, then the
    # second queues behind the first. (It holds the row with a lock, not a write as a third
    # upload would: a writer's new row lets both go for the row at once when it commits.)
    pages, screenshots = "ARTIFACT_KIND_CONTENT", "ARTIFACT_KIND_SCREENSHOT"
    store = ArtifactStore(async_database_url(postgres_url, tmp_path / "unused.db"))
    await store.start()
    try:
        await store.save(_content("task-1", pages, 10))
        await store.save(_content("task-2", screenshots, 20))
        async with store.engine.connect() as holder:
            await holder.execute(
                select(totals.c.kind).where(totals.c.kind == pages).with_for_update()
            )
            replacements: list[asyncio.Task[ArtifactRecord]] = []
            try:
                for task_id, kind, size in (("task-1", screenshots, 11), ("task-2", pages, 21)):
                    save = store.save(_content(task_id, kind, size))
                    replacements.append(asyncio.create_task(save))
                    await assert_eventually(
                        lambda: _waiting(len(replacements), store.engine),
                        message=f"the replacement of {task_id} never waited for a row of totals",
                    )
                await holder.rollback()
                await asyncio.wait_for(asyncio.gather(*replacements), 30)
            finally:
                for replacement in replacements:
                    await cancel_and_wait(replacement, "a replacement")
    finally:
        await store.close()

    kept, counted = await kept_and_counted(async_database_url(postgres_url, tmp_path))
    assert kept == counted == {("acme", pages): (1, 21), ("acme", screenshots): (1, 11)}


async def _waiting(count: int, engine: AsyncEngine) -> bool:
    return await writers_waiting_for_a_lock(engine) >= count


@pytest.fixture
async def store(storage: Storage) -> AsyncIterator[ArtifactStore]:
    """The storage service's store on its database."""
    store = ArtifactStore(storage.database_url)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def test_the_quota_check_and_the_gauges_read_the_totals_not_every_artifact(
    storage: Storage, store: ArtifactStore
) -> None:
    await storage.upload("task-1", "shot", b"a" * 10)

    with sql_statements(store.engine) as statements:
        by_kind = await store.stored_by_kind()
        start = await store.start_upload(storage.tenant, "task-2", "shot", UNCHECKED, 10, 1000)
    assert start.reservation is not None
    await store.release(start.reservation)

    assert by_kind["ARTIFACT_KIND_SCREENSHOT"][0] >= 1
    # Sums of the totals, and of the uploads under way; no artifact counted one by one.
    sums = [statement.lower() for statement in statements if "sum(" in statement.lower()]
    assert sums
    assert not [statement for statement in sums if "sum(artifacts." in statement]
    assert not [statement for statement in statements if "count(" in statement.lower()]


def _content(task_id: str, kind: str, size_bytes: int) -> ArtifactContent:
    return ArtifactContent(
        "acme", task_id, "shot", kind, "image/png", size_bytes, "0" * 64, f"acme/{task_id}/shot"
    )


def _artifact(tenant: str, size_bytes: int) -> dict[str, object]:
    task_id = f"task-{secrets.token_hex(4)}"
    return {
        "id": f"art_{secrets.token_hex(12)}",
        "tenant": tenant,
        "task_id": task_id,
        "name": "shot",
        "kind": "ARTIFACT_KIND_SCREENSHOT",
        "content_type": "image/png",
        "size_bytes": size_bytes,
        "sha256": "0" * 64,
        "object_key": f"{tenant}/{task_id}/shot",
        "create_time": dt.datetime.now(dt.UTC),
    }
