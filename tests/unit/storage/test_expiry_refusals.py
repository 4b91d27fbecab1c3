"""Storage's answer to an artifact expiry when S3 keeps one owner's objects: it names that owner.

A unit test of ArtifactExpiry: its rows on an in-memory SQLite database, its bucket
a stand-in that refuses to delete one owner's keys (as S3 does for an object it keeps).
"""

import json
from typing import cast

from sqlalchemy.ext.asyncio import create_async_engine

from farm_core.artifact_expiry import ArtifactOwner, refused_owners
from farm_core.errors import Unavailable
from farm_storage.blobs import BlobStore
from farm_storage.expiry import ArtifactExpiry
from farm_storage.models import Base
from farm_storage.nats_connection import StorageNats


class KeepingBucket:
    """Deletes every prefix but `kept`, whose objects S3 will not delete."""

    def __init__(self, kept: str) -> None:
        self.kept = kept
        self.removed: list[str] = []

    async def remove_under(self, prefix: str) -> int:
        if prefix == self.kept:
            raise Unavailable(f"S3 kept 1 of 1 objects under {prefix!r}: AccessDenied")
        self.removed.append(prefix)
        return 1


async def test_an_owner_s3_will_not_empty_is_named_and_the_others_are_deleted() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    bucket = KeepingBucket("acme/b/")
    expiry = ArtifactExpiry(cast(StorageNats, None), engine, cast(BlobStore, bucket))
    owners = [ArtifactOwner("acme", "a"), ArtifactOwner("acme", "b"), ArtifactOwner("acme", "c")]
    try:
        answer = await expiry._answer(owners)
    finally:
        await engine.dispose()

    assert bucket.removed == ["acme/a/", "acme/c/"]
    assert refused_owners(answer, owners) == [owners[1]]
    # An older scheduler, which reads only `error`, keeps the whole batch: still safe.
    assert json.loads(answer)["error"]
