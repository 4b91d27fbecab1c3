"""A service refuses, by name and without a traceback, a database a newer version migrated.

Rolling a farm back to an older release after an upgrade leaves its tables at a
migration the older code does not know; Alembic alone failed with a traceback that
named neither the service nor what to do.
"""

from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_auth import store as auth_store
from farm_core.db import NewerSchema, migrate
from farm_scheduler import store as scheduler_store
from farm_storage import store as storage_store
from tests.service_start import start_service

pytestmark = pytest.mark.integration

SERVICES = {
    "auth": (auth_store.MIGRATIONS, auth_store.VERSION_TABLE),
    "scheduler": (scheduler_store.MIGRATIONS, scheduler_store.VERSION_TABLE),
    "storage": (storage_store.MIGRATIONS, storage_store.VERSION_TABLE),
}
# A revision no release has made yet: what a newer one leaves behind.
FUTURE = "9999"


async def as_if_newer(engine: AsyncEngine, version_table: str) -> None:
    """Marks the service's tables as migrated past what this version knows."""
    async with engine.begin() as connection:
        await connection.execute(text(f"UPDATE {version_table} SET version_num = '{FUTURE}'"))


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_a_newer_schema_is_refused_naming_the_service_and_the_way_back(
    engine: AsyncEngine, service: str
) -> None:
    migrations, version_table = SERVICES[service]
    await migrate(engine, migrations, version_table)
    async with engine.connect() as connection:
        tables = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    await as_if_newer(engine, version_table)

    with pytest.raises(NewerSchema) as refused:
        await migrate(engine, migrations, version_table)

    message = str(refused.value)
    assert f"the database's {service} tables are at migration {FUTURE}" in message
    assert "restore the backup made before the upgrade" in message
    async with engine.connect() as connection:
        after = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        version = await connection.scalar(text(f"SELECT version_num FROM {version_table}"))
    assert (after, version) == (tables, FUTURE)


async def test_the_current_schema_migrates_again_without_a_word(engine: AsyncEngine) -> None:
    migrations, version_table = SERVICES["scheduler"]
    await migrate(engine, migrations, version_table)
    await migrate(engine, migrations, version_table)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_service_exits_saying_so_without_a_traceback(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    migrations, version_table = SERVICES["auth"]
    await migrate(engine, migrations, version_table)
    await as_if_newer(engine, version_table)

    ended = start_service(
        "auth",
        tmp_path / "home",
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}", "FARM_AUTH_METRICS_PORT": "0"},
    )

    assert ended.returncode == 1, ended.stderr
    assert f"cannot start: the database's auth tables are at migration {FUTURE}" in ended.stderr
    assert "Traceback" not in ended.stderr
