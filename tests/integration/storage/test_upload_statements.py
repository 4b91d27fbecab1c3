"""What an upload under a byte quota costs in SQL, on SQLite and PostgreSQL.

Each statement is a hop to the database's thread or server, and on a warm task those
hops, not the SQL, were most of the upload's time (docs/performance.md). Real
storage library, SeaweedFS and SQL.
"""

import hashlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from farm_core.errors import ResourceExhausted
from farm_storage.attempts import AttemptFence
from farm_storage.blobs import BlobStore
from farm_storage.cache_eviction import CacheEviction
from farm_storage.ingest import ReceivedUpload
from farm_storage.library import ArtifactLibrary
from farm_storage.nats_connection import StorageNats
from farm_storage.store import ArtifactStore
from tests.conftest import S3Server
from tests.helpers import sql_statements
from tests.integration.storage.conftest import Storage, storage_settings

pytestmark = pytest.mark.integration

QUOTA = 100


@pytest.fixture
async def library(
    storage: Storage, seaweedfs: S3Server, farm_home: Path
) -> AsyncIterator[tuple[ArtifactLibrary, ArtifactStore]]:
    """The storage service's library on its database and bucket, and the library's store."""
    settings = storage_settings(farm_home, storage.database_url, seaweedfs, storage.bucket)
    store = ArtifactStore(storage.database_url)
    blobs = BlobStore(settings)
    await store.start()
    await blobs.start()
    try:
        yield ArtifactLibrary(store, blobs, CacheEviction(StorageNats(settings.nats()), 1.0)), store
    finally:
        await blobs.close()
        await store.close()


def upload(tenant: str, task_id: str, data: bytes, attempt: int = 1) -> ReceivedUpload:
    """A task's upload of `data` as "shot", naming attempt `attempt`."""
    return ReceivedUpload(
        tenant=tenant,
        task_id=task_id,
        name="shot",
        kind="ARTIFACT_KIND_SCREENSHOT",
        content_type="image/png",
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        fence=AttemptFence(work_sequence=7, attempt=attempt),
    )


async def test_an_upload_under_a_quota_checks_and_reserves_in_two_statements_and_saves_in_one(
    library: tuple[ArtifactLibrary, ArtifactStore], storage: Storage
) -> None:
    artifacts, store = library
    task_id = f"task-{secrets.token_hex(6)}"
    await artifacts.store_upload(upload(storage.tenant, task_id, b"a" * 60), QUOTA)

    with sql_statements(store.engine) as replacing:
        record = await artifacts.store_upload(upload(storage.tenant, task_id, b"b" * 90), QUOTA)

    # Before the bytes: the artifact it replaces with the task's newest attempt, then the
    # reservation, made only if it leaves room. After: the row written unless a later
    # attempt stored first, with the reservation's end (on SQLite a statement of its
    # own). PostgreSQL adds the tenant's and the task's locks.
    sqlite = store.engine.dialect.name == "sqlite"
    locks = [statement for statement in replacing if "pg_advisory_xact_lock" in statement]
    others = [statement for statement in replacing if statement not in locks]
    assert len(others) == (4 if sqlite else 3), others
    assert len(locks) == (0 if sqlite else 2), locks
    assert record.size_bytes == 90


async def test_a_refused_upload_names_the_usage_and_holds_nothing(
    library: tuple[ArtifactLibrary, ArtifactStore], storage: Storage
) -> None:
    artifacts, _ = library
    await artifacts.store_upload(upload(storage.tenant, "task-1", b"a" * 60), QUOTA)

    with pytest.raises(ResourceExhausted) as caught:
        await artifacts.store_upload(upload(storage.tenant, "task-2", b"b" * 41), QUOTA)
    # Exactly the quota, replacing task-1's 60 bytes by 100.
    replaced = await artifacts.store_upload(upload(storage.tenant, "task-1", b"c" * 100), QUOTA)

    assert str(caught.value).endswith(
        f"tenant {storage.tenant!r} stores 60 bytes of artifacts; 41 more would pass its "
        f"quota of {QUOTA}"
    )
    assert replaced.size_bytes == 100
