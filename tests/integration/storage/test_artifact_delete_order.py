"""DeleteArtifact commits the row's delete before it removes the bytes.

So a failure between the two never leaves a row pointing at missing bytes: a
failed commit keeps the artifact whole, and bytes that S3 failed to remove (no
row names them) go with the task's other objects at its retention. Real storage
library, SQL and SeaweedFS (behind a TCP link the test cuts).
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from minio.error import S3Error
from sqlalchemy import event

from farm_core.artifact_expiry import ArtifactOwner
from farm_storage.blobs import BlobStore
from farm_storage.cache_eviction import CacheEviction
from farm_storage.expiry import ArtifactExpiry
from farm_storage.library import ArtifactLibrary
from farm_storage.nats_connection import StorageNats
from farm_storage.store import ArtifactStore
from tests.conftest import NatsServer, S3Server
from tests.integration.storage.conftest import Evictions, Storage, storage_settings
from tests.tcp_link import CuttableLink

pytestmark = pytest.mark.integration

TASK_ID = "task-1"
KEY_NAME = "screenshot"


class CommitRefused(Exception):
    """The injected failure of the database's commit."""


@dataclass
class Parts:
    """The storage library on the service's database and bucket, and the parts it uses."""

    library: ArtifactLibrary
    store: ArtifactStore
    blobs: BlobStore
    nats: StorageNats
    link: CuttableLink


@pytest.fixture
async def parts(
    storage: Storage,
    evictions: Evictions,
    seaweedfs: S3Server,
    nats_server: NatsServer,
    farm_home: Path,
) -> AsyncIterator[Parts]:
    """A library of the storage service's database, reaching SeaweedFS through a link."""
    link = CuttableLink(int(seaweedfs.endpoint.rsplit(":", 1)[1]))
    await link.mend()
    settings = storage_settings(
        farm_home, storage.database_url, seaweedfs, storage.bucket, nats_server.url
    ).model_copy(update={"s3_endpoint": f"http://127.0.0.1:{link.port}", "s3_timeout_seconds": 5})
    store, blobs = ArtifactStore(storage.database_url), BlobStore(settings)
    await store.start()
    await blobs.start()
    nats = StorageNats(settings.nats())
    nats.start()
    try:
        eviction = CacheEviction(nats, settings.cache_eviction_timeout_seconds)
        yield Parts(ArtifactLibrary(store, blobs, eviction), store, blobs, nats, link)
    finally:
        await nats.close()
        await blobs.close()
        await store.close()
        await link.cut()


@pytest.fixture
def refused_commit(parts: Parts) -> Iterator[None]:
    """The store's next commit fails."""
    refused: list[bool] = []

    def refuse(connection: Any) -> None:
        if not refused:
            refused.append(True)
            raise CommitRefused("the database refused the commit")

    engine = parts.store.engine.sync_engine
    event.listen(engine, "commit", refuse)
    try:
        yield
    finally:
        event.remove(engine, "commit", refuse)


def object_exists(storage: Storage, key: str) -> bool:
    """Whether the bucket holds `key`, asked of S3 directly."""
    try:
        storage.s3.stat_object(storage.bucket, key)
    except S3Error as error:
        if error.code == "NoSuchKey":
            return False
        raise
    return True


async def test_a_delete_whose_commit_fails_keeps_the_artifact_whole(
    storage: Storage, parts: Parts, refused_commit: None
) -> None:
    artifact = (await storage.upload(TASK_ID, KEY_NAME, b"png bytes")).artifact

    with pytest.raises(CommitRefused):
        await parts.library.delete(storage.tenant, artifact.id)

    # Before, the bytes went first: the row stayed and its content answered NOT_FOUND.
    assert (await storage.get(artifact.id)).id == artifact.id
    assert (await storage.content(artifact.id)).data == b"png bytes"


async def test_bytes_s3_failed_to_remove_outlive_their_row_until_the_tasks_retention(
    storage: Storage, parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    artifact = (await storage.upload(TASK_ID, KEY_NAME, b"png bytes")).artifact
    key = f"{storage.tenant}/{TASK_ID}/{KEY_NAME}"

    await parts.link.cut()
    await parts.library.delete(storage.tenant, artifact.id)
    await parts.link.mend()

    # The artifact is gone for the API; its bytes stay, named by no row, and logged.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.get(artifact.id)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert await asyncio.to_thread(object_exists, storage, key)
    assert f"could not remove the unreferenced S3 object {key!r}" in caplog.text

    # The task's retention removes every object under its keys, this one included.
    expiry = ArtifactExpiry(parts.nats, parts.store.engine, parts.blobs)
    await expiry.expire([ArtifactOwner(storage.tenant, TASK_ID)])
    assert not await asyncio.to_thread(object_exists, storage, key)
