"""Artifacts of every tenant: metadata in SQL and bytes in S3, kept consistent."""

import logging

from prometheus_client import Counter

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import FarmError, NotFound
from farm_core.metric_series import start_at_zero
from farm_core.paging import Cursor
from farm_storage.blobs import BlobMissing, BlobStore, object_key
from farm_storage.cache_eviction import CacheEviction
from farm_storage.ended_tasks import EndedTasks
from farm_storage.ingest import ReceivedUpload
from farm_storage.store import ArtifactContent, ArtifactRecord, ArtifactStore

log = logging.getLogger(__name__)

uploads_total = Counter("farm_storage_uploads_total", "Artifacts stored, by kind.", ["kind"])
upload_bytes_total = Counter(
    "farm_storage_upload_bytes_total", "Bytes of artifacts stored, by kind.", ["kind"]
)
# Served from 0 for every kind an upload may have (ingest refuses ARTIFACT_KIND_UNSPECIFIED).
STORED_KINDS = [
    name
    for name, value in tasks_pb2.ArtifactKind.items()
    if value != tasks_pb2.ARTIFACT_KIND_UNSPECIFIED
]
start_at_zero(uploads_total, kind=STORED_KINDS)
start_at_zero(upload_bytes_total, kind=STORED_KINDS)


class ArtifactLibrary:
    """Stores, reads and deletes artifacts so that metadata never points at missing bytes."""

    def __init__(
        self,
        store: ArtifactStore,
        blobs: BlobStore,
        eviction: CacheEviction,
        ended_tasks: EndedTasks | None = None,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._eviction = eviction
        self._ended_tasks = ended_tasks

    async def store_upload(
        self, upload: ReceivedUpload, max_artifact_bytes: int = 0
    ) -> ArtifactRecord:
        """Stores an upload's bytes, then its metadata; replaces an earlier (task, name).

        With a byte quota (`max_artifact_bytes`, the tenant's; 0 is none), the upload's
        size is reserved first, so uploads at the same moment cannot pass the quota
        together; a failed upload gives it back. An upload of an attempt that a later
        attempt of its task has overtaken stores nothing (StaleAttempt, attempts.py), nor
        does one for a task that has ended (TaskEnded, ended_tasks.py).
        """
        if self._ended_tasks is not None:
            await self._ended_tasks.check(upload.task_id)
        key = object_key(upload.tenant, upload.task_id, upload.name, upload.fence)
        start = await self._store.start_upload(
            upload.tenant,
            upload.task_id,
            upload.name,
            upload.fence,
            len(upload.data),
            max_artifact_bytes,
        )
        earlier, reservation = start.earlier, start.reservation
        try:
            record = await self._store_reserved(upload, key, earlier, reservation)
        except BaseException:
            if reservation is not None:
                await self._release(reservation)
            raise
        if earlier is not None and earlier.object_key != key:
            # The replaced artifact's bytes, under another attempt's key, have no row now.
            await self._discard(earlier.object_key)
        uploads_total.labels(record.kind).inc()
        upload_bytes_total.labels(record.kind).inc(record.size_bytes)
        return record

    async def _store_reserved(
        self,
        upload: ReceivedUpload,
        key: str,
        earlier: ArtifactRecord | None,
        reservation: str | None,
    ) -> ArtifactRecord:
        await self._blobs.put(key, upload.data, upload.content_type)
        content = ArtifactContent(
            tenant=upload.tenant,
            task_id=upload.task_id,
            name=upload.name,
            kind=upload.kind,
            content_type=upload.content_type,
            size_bytes=len(upload.data),
            sha256=upload.sha256,
            object_key=key,
            work_sequence=upload.fence.work_sequence,
            attempt=upload.fence.attempt,
        )
        try:
            return await self._store.save(content, reservation)
        except Exception:
            # An earlier row still points at the key (now holding the new bytes), so
            # those bytes stay; a new artifact's bytes go, as no row points at them.
            if earlier is None or earlier.object_key != key:
                await self._discard(key)
            raise

    async def _release(self, reservation: str) -> None:
        try:
            await self._store.release(reservation)
        except Exception as error:
            # It lapses by itself; the upload's own error is the one to report.
            log.warning("could not release byte reservation %s (it lapses): %s", reservation, error)

    async def get(self, tenant: str, artifact_id: str) -> ArtifactRecord:
        """The tenant's artifact; NotFound if absent or another tenant's."""
        return await self._store.get(tenant, artifact_id)

    async def content(self, tenant: str, artifact_id: str) -> tuple[ArtifactRecord, bytes]:
        """The tenant's artifact and its bytes."""
        record = await self._store.get(tenant, artifact_id)
        try:
            data = await self._blobs.get(record.object_key)
        except BlobMissing as error:
            raise NotFound("content of artifact", artifact_id) from error
        return record, data

    async def page(
        self, tenant: str, task_id: str, size: int, after: Cursor | None
    ) -> list[ArtifactRecord]:
        """Up to `size` of the tenant's artifacts (of `task_id` if set), newest first."""
        return await self._store.page(tenant, task_id, size, after)

    async def delete(self, tenant: str, artifact_id: str) -> None:
        """Deletes the tenant's artifact: its row (committed), then its bytes.

        First the scheduler drops its task's cached result (which names the artifact);
        if it cannot, nothing is deleted (Unavailable). The row goes before the bytes,
        so a failure between them leaves no row pointing at missing bytes: at worst
        bytes no row names, logged here and removed with the rest of the task's
        objects when the task passes its retention (expiry.py).
        """
        async with self._store.deleting(tenant, artifact_id) as record:
            await self._eviction.evict(record.tenant, record.task_id)
        await self._discard(record.object_key)

    async def _discard(self, key: str) -> None:
        try:
            await self._blobs.remove(key)
        except FarmError as error:
            log.warning("could not remove the unreferenced S3 object %r: %s", key, error)
