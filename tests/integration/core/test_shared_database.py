"""Every service's tables in one database, as a deployment may give them (the multi-host farm does).

Each service migrates with a version table of its own; its tables must not take a
name another service's migrations create.
"""

import pytest
from sqlalchemy import MetaData, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

import farm_auth.audit_log  # noqa: F401 - registers the audit records' table on auth's metadata
from farm_auth import models as auth_models
from farm_auth import store as auth_store
from farm_core.db import migrate
from farm_scheduler import models as scheduler_models
from farm_scheduler import store as scheduler_store
from farm_storage import models as storage_models
from farm_storage import store as storage_store

pytestmark = pytest.mark.integration

SERVICES: list[tuple[str, str, MetaData]] = [
    (auth_store.MIGRATIONS, auth_store.VERSION_TABLE, auth_models.Base.metadata),
    (scheduler_store.MIGRATIONS, scheduler_store.VERSION_TABLE, scheduler_models.Base.metadata),
    (storage_store.MIGRATIONS, storage_store.VERSION_TABLE, storage_models.Base.metadata),
]


def test_no_two_services_name_the_same_table() -> None:
    seen: dict[str, str] = {}
    for migrations, _, metadata in SERVICES:
        for table in metadata.tables:
            assert table not in seen, f"{migrations} and {seen[table]} both have table {table}"
            seen[table] = migrations


async def test_every_service_migrates_into_one_database(engine: AsyncEngine) -> None:
    for migrations, version_table, _ in SERVICES:
        await migrate(engine, migrations, version_table)

    async with engine.connect() as connection:
        tables = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    for migrations, _, metadata in SERVICES:
        assert set(metadata.tables) <= tables, (migrations, set(metadata.tables) - tables)
