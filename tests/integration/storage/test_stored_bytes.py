"""Each tenant's stored bytes, the row its byte quota is checked against, kept in step in SQL.

An upload's quota check reads that row instead of summing the tenant's artifacts, so
the row must follow every write: new artifacts, replacements, deletes, artifacts
stored before the row existed. Real storage service, SeaweedFS and SQL (SQLite and
PostgreSQL).
"""

import datetime as dt
import secrets
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from farm_core.db import async_database_url, create_engine, migrate
from farm_storage.models import ArtifactRow
from farm_storage.reservations import stored_bytes
from farm_storage.store import MIGRATIONS, VERSION_TABLE, artifacts
from tests.integration.storage.conftest import Storage, token

pytestmark = pytest.mark.integration


async def counted_and_summed(database_url: str) -> tuple[dict[str, int], dict[str, int]]:
    """Each tenant's row of stored bytes, and the sum of its artifacts' sizes."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            counted = await connection.execute(select(stored_bytes))
            summed = await connection.execute(
                select(artifacts.c.tenant, func.sum(artifacts.c.size_bytes)).group_by(
                    artifacts.c.tenant
                )
            )
            return (
                {tenant: int(size) for tenant, size in counted if size},
                {tenant: int(size) for tenant, size in summed},
            )
    finally:
        await engine.dispose()


async def test_a_tenants_stored_bytes_follow_its_uploads_replacements_and_deletes(
    storage: Storage,
) -> None:
    first = (await storage.upload("task-1", "shot", b"a" * 60, attempt=1)).artifact
    await storage.upload("task-2", "shot", b"b" * 30)
    await storage.upload("task-1", "shot", b"c" * 10, attempt=2)  # replaced by a smaller one
    await storage.upload("task-2", "shot", b"d" * 45)  # and by a larger one
    await storage.upload("task-3", "page", b"e" * 7, tenant=f"{storage.tenant}-other")
    await storage.delete(first.id, token(storage.tenant, "tasks.write"))
    # A later attempt stored first: this one writes nothing, its bytes count nowhere.
    await storage.upload("task-4", "shot", b"f" * 5, attempt=2)
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await storage.upload("task-4", "shot", b"g" * 50, attempt=1)

    counted, summed = await counted_and_summed(storage.database_url)

    assert stale.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert counted[storage.tenant] == 45 + 5
    assert counted[f"{storage.tenant}-other"] == 7
    assert {tenant: counted[tenant] for tenant in summed} == summed


async def test_artifacts_stored_before_the_row_existed_are_counted(
    database_url: str, tmp_path: Path
) -> None:
    url = async_database_url(database_url, tmp_path / "storage.db")
    engine = create_engine(url)
    try:
        # The tables as the last release before the row left them, with its artifacts.
        await migrate(engine, MIGRATIONS, VERSION_TABLE, revision="0004")
        async with engine.begin() as connection:
            for tenant, size in (("acme", 100), ("acme", 23), ("umbrella", 5)):
                await connection.execute(insert(ArtifactRow).values(**_artifact(tenant, size)))

        await migrate(engine, MIGRATIONS, VERSION_TABLE)
    finally:
        await engine.dispose()

    counted, summed = await counted_and_summed(url)
    assert counted == summed == {"acme": 123, "umbrella": 5}


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
