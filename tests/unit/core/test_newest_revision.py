"""A start finds tables at the newest migration without Alembic, and still migrates the rest.

Each service names its newest revision (`migrations.NEWEST_REVISION`) so that a start
can compare the version table with it instead of importing Alembic's script
machinery; these tests hold that name to the migration scripts.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from farm_auth import migrations as auth_migrations
from farm_auth import store as auth_store
from farm_core.db import Database, async_database_url, at_revision, create_engine, migrate
from farm_scheduler import migrations as scheduler_migrations
from farm_scheduler import store as scheduler_store
from farm_storage import migrations as storage_migrations
from farm_storage import store as storage_store

SERVICES = {
    "auth": auth_store,
    "scheduler": scheduler_store,
    "storage": storage_store,
}
NEWEST = {
    "auth": auth_migrations.NEWEST_REVISION,
    "scheduler": scheduler_migrations.NEWEST_REVISION,
    "storage": storage_migrations.NEWEST_REVISION,
}
# Each service's Database: the class its server starts.
STORES = {"auth": "KeyStore", "scheduler": "TaskStore", "storage": "ArtifactStore"}


def scripts(script_location: str) -> ScriptDirectory:
    """The Alembic scripts at `script_location` ("pkg:dir")."""
    config = Config()
    config.set_main_option("script_location", script_location)
    return ScriptDirectory.from_config(config)


def store_of(service: str, url: str) -> Database:
    """The service's store (a Database) on `url`, not started."""
    database: Database = getattr(SERVICES[service], STORES[service])(url)
    return database


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_named_newest_revision_is_the_head_of_the_migrations(service: str) -> None:
    store = SERVICES[service]
    assert scripts(store.MIGRATIONS).get_current_head() == NEWEST[service]


async def test_only_tables_at_the_revision_are_at_it(tmp_path: Path) -> None:
    store = scheduler_store
    engine = create_engine(async_database_url("", tmp_path / "scheduler.db"))
    try:
        never_migrated = await at_revision(engine, store.VERSION_TABLE, NEWEST["scheduler"])
        await migrate(engine, store.MIGRATIONS, store.VERSION_TABLE, revision="0018")
        older = await at_revision(engine, store.VERSION_TABLE, NEWEST["scheduler"])
        await migrate(engine, store.MIGRATIONS, store.VERSION_TABLE)
        newest = await at_revision(engine, store.VERSION_TABLE, NEWEST["scheduler"])
        another_service = await at_revision(engine, "alembic_version_auth", "0018")
    finally:
        await engine.dispose()
    assert (never_migrated, older, newest, another_service) == (False, False, True, False)


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_a_start_upgrades_tables_of_an_older_revision(service: str, tmp_path: Path) -> None:
    store = SERVICES[service]
    url = async_database_url("", tmp_path / f"{service}.db")
    database = store_of(service, url)
    first = scripts(store.MIGRATIONS).get_base() or ""
    await migrate(database.engine, store.MIGRATIONS, store.VERSION_TABLE, revision=first)
    try:
        await database.start()
        async with database.engine.connect() as connection:
            version = await connection.scalar(
                text(f"SELECT version_num FROM {store.VERSION_TABLE}")
            )
    finally:
        await database.close()
    assert version == NEWEST[service] != first


# Run in a fresh interpreter: this one has imported Alembic already.
START_AND_REPORT = """
import asyncio, sys
from pathlib import Path
from farm_core.db import async_database_url
from farm_{service}.store import {store}

async def main() -> None:
    database = {store}(async_database_url("", Path(sys.argv[1])))
    await database.start()
    await database.close()

asyncio.run(main())
print(sorted(name for name in sys.modules if name.split(".")[0] == "alembic"))
"""


@pytest.fixture
async def newest_database(service: str, tmp_path: Path) -> Path:
    """A SQLite file with `service`'s tables at its newest revision."""
    store = SERVICES[service]
    path = tmp_path / f"{service}.db"
    engine = create_engine(async_database_url("", path))
    try:
        await migrate(engine, store.MIGRATIONS, store.VERSION_TABLE)
    finally:
        await engine.dispose()
    return path


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_start_on_tables_at_the_newest_revision_leaves_alembic_unloaded(
    service: str, newest_database: Path
) -> None:
    code = START_AND_REPORT.format(service=service, store=STORES[service])

    started = subprocess.run(
        [sys.executable, "-c", code, str(newest_database)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (started.returncode, started.stderr, started.stdout.strip()) == (0, "", "[]")


@pytest.mark.parametrize("service", ["agent", "auth", "console", "mcp", "scheduler", "storage"])
def test_importing_a_service_leaves_alembic_unloaded(service: str) -> None:
    code = (
        f"import sys, farm_{service}.__main__; "
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'alembic'))"
    )

    imported = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )

    assert (imported.returncode, imported.stdout.strip()) == (0, "[]")
