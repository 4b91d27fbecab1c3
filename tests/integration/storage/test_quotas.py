"""Tenants' artifact byte quotas: carried by the scheduler's grant of each upload, counted
in SQL. Storage asks no other service."""

import asyncio
import dataclasses
import datetime as dt
import secrets
from collections.abc import AsyncIterator

import grpc
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from farm.storage.v1 import ingest_pb2
from farm_storage.reservations import reservations
from tests.integration.storage.conftest import Storage

pytestmark = pytest.mark.integration

QUOTA = 100


@dataclasses.dataclass(frozen=True)
class QuotaFarm:
    """A storage service whose uploads for `storage.tenant` carry a 100-byte quota."""

    storage: Storage


@pytest.fixture
async def quota_farm(storage: Storage) -> AsyncIterator[QuotaFarm]:
    """The storage service; the test tenant's grants carry a byte quota of 100."""
    yield QuotaFarm(dataclasses.replace(storage, max_artifact_bytes=QUOTA))


async def test_uploads_up_to_exactly_the_quota_pass_and_one_byte_more_is_refused(
    quota_farm: QuotaFarm,
) -> None:
    storage = quota_farm.storage
    first = await storage.upload("task-1", "shot", b"a" * 60)
    # Replacing an artifact counts its new size only: 100 bytes stored, the quota exactly.
    replaced = await storage.upload("task-1", "shot", b"b" * 70)
    filling = await storage.upload("task-2", "shot", b"c" * 30)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.upload("task-3", "shot", b"d")

    assert [first.artifact.size_bytes, replaced.artifact.size_bytes] == [60, 70]
    assert filling.artifact.size_bytes == 30
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (caught.value.details() or "").startswith(
        f"quota maxArtifactBytes: tenant '{storage.tenant}' stores 100 bytes"
    )


async def test_another_tenant_is_not_held_by_this_tenants_quota(quota_farm: QuotaFarm) -> None:
    storage = quota_farm.storage
    await storage.upload("task-1", "shot", b"a" * QUOTA)
    unlimited = dataclasses.replace(storage, max_artifact_bytes=0)

    response = await unlimited.upload("task-9", "shot", b"b" * 200, tenant="someone-else")

    assert response.artifact.size_bytes == 200


async def reservation_rows(storage: Storage) -> list[tuple[str, int]]:
    """(tenant, size_bytes) of every byte reservation in the storage database."""
    engine = create_async_engine(storage.database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(reservations.c.tenant, reservations.c.size_bytes)
            )
            return [(row.tenant, row.size_bytes) for row in rows]
    finally:
        await engine.dispose()


async def reserve_directly(storage: Storage, size_bytes: int, expire_time: dt.datetime) -> None:
    """A reservation as an upload under way (or one whose process died) leaves it."""
    engine = create_async_engine(storage.database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(reservations).values(
                    id=f"res_{secrets.token_hex(6)}",
                    tenant=storage.tenant,
                    size_bytes=size_bytes,
                    expire_time=expire_time,
                )
            )
    finally:
        await engine.dispose()


async def test_concurrent_uploads_never_pass_the_byte_quota(quota_farm: QuotaFarm) -> None:
    storage = quota_farm.storage

    outcomes = await asyncio.gather(
        *(storage.upload(f"task-{n}", "shot", b"x" * 30) for n in range(10)),
        return_exceptions=True,
    )

    stored = [o for o in outcomes if isinstance(o, ingest_pb2.UploadArtifactResponse)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(stored) == QUOTA // 30 and len(refused) == 10 - QUOTA // 30, outcomes
    assert {error.code() for error in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    # Every reservation ended: with its artifact saved, or never made when refused.
    assert await reservation_rows(storage) == []


async def test_concurrent_uploads_fill_the_byte_quota_exactly_and_no_further(
    quota_farm: QuotaFarm,
) -> None:
    storage = quota_farm.storage

    outcomes = await asyncio.gather(
        *(storage.upload(f"task-{n}", "shot", b"x" * 25) for n in range(10)),
        return_exceptions=True,
    )

    stored = [o for o in outcomes if isinstance(o, ingest_pb2.UploadArtifactResponse)]
    assert len(stored) == QUOTA // 25, outcomes
    assert sum(response.artifact.size_bytes for response in stored) == QUOTA
    assert await reservation_rows(storage) == []


async def test_bytes_reserved_by_an_upload_under_way_count_until_they_lapse(
    quota_farm: QuotaFarm,
) -> None:
    storage = quota_farm.storage
    now = dt.datetime.now(dt.UTC)
    await reserve_directly(storage, 50, now + dt.timedelta(minutes=5))
    await reserve_directly(storage, QUOTA, now - dt.timedelta(seconds=1))  # lapsed

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.upload("task-1", "shot", b"a" * 60)
    response = await storage.upload("task-2", "shot", b"b" * 50)

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "and 50 in uploads under way; 60 more would pass its quota of 100" in (
        caught.value.details() or ""
    )
    assert response.artifact.size_bytes == 50
    # The lapsed reservation was cleared; the live one is still held.
    assert await reservation_rows(storage) == [(storage.tenant, 50)]
