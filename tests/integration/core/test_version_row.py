"""The version row a start reads instead of Alembic, on SQLite and PostgreSQL alike.

`at_revision` says yes only for tables at exactly the newest revision, so that
every other database (new, older, newer, another service's) still goes through
Alembic and its lock.
"""

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_auth import store as auth_store
from farm_core.db import async_database_url, at_revision, migrate
from farm_scheduler import store as scheduler_store
from farm_scheduler.migrations import NEWEST_REVISION
from farm_scheduler.store import TaskStore

pytestmark = pytest.mark.integration

TABLE = scheduler_store.VERSION_TABLE


async def test_only_the_newest_revision_alone_is_at_it(engine: AsyncEngine) -> None:
    seen = [await at_revision(engine, TABLE, NEWEST_REVISION)]
    await migrate(engine, auth_store.MIGRATIONS, auth_store.VERSION_TABLE)
    seen.append(await at_revision(engine, TABLE, NEWEST_REVISION))
    await migrate(engine, scheduler_store.MIGRATIONS, TABLE, revision="0018")
    seen.append(await at_revision(engine, TABLE, NEWEST_REVISION))
    await migrate(engine, scheduler_store.MIGRATIONS, TABLE)
    seen.append(await at_revision(engine, TABLE, NEWEST_REVISION))
    async with engine.begin() as connection:
        await connection.execute(text(f"INSERT INTO {TABLE} (version_num) VALUES ('9999')"))
    seen.append(await at_revision(engine, TABLE, NEWEST_REVISION))

    assert seen == [False, False, False, True, False]


async def test_a_start_on_an_older_revision_migrates(database_url: str, tmp_path: Path) -> None:
    store = TaskStore(async_database_url(database_url, tmp_path / "scheduler.db"))
    try:
        await migrate(store.engine, scheduler_store.MIGRATIONS, TABLE, revision="0018")
        await store.start()
        at_newest = await at_revision(store.engine, TABLE, NEWEST_REVISION)
    finally:
        await store.close()

    assert at_newest
