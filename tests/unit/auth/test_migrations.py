"""The auth service's migrations: keys of the first revision keep working after an upgrade."""

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from farm_auth.limits import QuotaSetting, RateSetting
from farm_auth.store import MIGRATIONS, VERSION_TABLE, KeyStore
from farm_core.db import async_database_url, create_engine

CREATED = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)


def _upgrade(connection: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["version_table"] = VERSION_TABLE
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def test_a_first_revision_key_is_found_with_default_limits_after_the_upgrade(
    tmp_path: Path,
) -> None:
    url = async_database_url("", tmp_path / "auth.db")
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, "0001")
        await connection.execute(
            sa.text("INSERT INTO tenants (name, create_time) VALUES ('acme', :time)"),
            {"time": CREATED},
        )
        await connection.execute(
            sa.text(
                "INSERT INTO api_keys (id, tenant, name, scopes, secret_hash, create_time) "
                "VALUES ('key_1', 'acme', 'ci', '[\"tasks.read\"]', :hash, :time)"
            ),
            {"hash": "h" * 64, "time": CREATED},
        )
    await engine.dispose()

    store = KeyStore(url)
    await store.start()
    try:
        record = await store.find_by_hash("h" * 64)
        tenant = await store.get_tenant("acme")
    finally:
        await store.close()

    assert record is not None and record.id == "key_1"
    assert record.rate_setting == RateSetting()
    assert record.tenant_quotas == QuotaSetting()
    assert tenant is not None and tenant.quotas == QuotaSetting()
