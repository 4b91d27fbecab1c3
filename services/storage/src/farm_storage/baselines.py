"""Tenants' baselines of visual comparisons: metadata in SQL, images in S3, kept consistent.

A baseline's image is a copy of a screenshot artifact, so deleting the artifact
leaves the baseline whole. Each image gets an S3 key of its own
(`<tenant>/_baselines/<id>/<sha256>.png`), so a reader never sees a row paired
with another image's bytes; the image a row stops pointing at is removed.
"""

import hashlib
import logging

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import FailedPrecondition, FarmError, NotFound
from farm_core.paging import Cursor
from farm_core.saved import BaselineKey
from farm_storage.blobs import BlobMissing, BlobStore
from farm_storage.download import media_type
from farm_storage.saved_store import (
    BaselineRecord,
    BaselineTable,
    StoredImage,
    new_baseline_id,
)
from farm_storage.store import ArtifactStore

log = logging.getLogger(__name__)

PNG = "image/png"
SCREENSHOT_KIND = tasks_pb2.ArtifactKind.Name(tasks_pb2.ARTIFACT_KIND_SCREENSHOT)


def baseline_object_key(tenant: str, baseline_id: str, sha256: str) -> str:
    """The S3 key of one image of a baseline (task ids never start with "_")."""
    return f"{tenant}/_baselines/{baseline_id}/{sha256}.png"


class BaselineLibrary:
    """Finds, creates, approves and deletes baselines; copies artifacts' images into them."""

    def __init__(self, table: BaselineTable, artifacts: ArtifactStore, blobs: BlobStore) -> None:
        self._table = table
        self._artifacts = artifacts
        self._blobs = blobs

    async def image(self, tenant: str, key: BaselineKey) -> tuple[BaselineRecord, bytes]:
        """The tenant's baseline of `key` and its image; NotFound when the key has none."""
        for _ in range(2):
            record = await self._table.find(tenant, key)
            if record is None:
                break
            try:
                return record, await self._blobs.get(record.object_key)
            except BlobMissing:
                # Approved or deleted while we read: the row is read again once.
                continue
        raise NotFound("baseline", key.describe())

    async def create(
        self, tenant: str, key: BaselineKey, artifact_id: str
    ) -> tuple[BaselineRecord, bool]:
        """The key's baseline (made from the tenant's PNG artifact if it had none), and if new."""
        existing = await self._table.find(tenant, key)
        if existing is not None:
            return existing, False
        baseline_id = new_baseline_id()
        image = await self._copy_artifact(tenant, baseline_id, artifact_id)
        try:
            created = await self._table.create(baseline_id, tenant, key, artifact_id, image)
        except BaseException:
            await self._discard(image.object_key)
            raise
        if created is not None:
            return created, True
        # Another task made the key's baseline while we copied: that one stays.
        await self._discard(image.object_key)
        winner = await self._table.find(tenant, key)
        if winner is None:
            raise FailedPrecondition(f"baseline {key.describe()} was deleted while it was made")
        return winner, False

    async def approve(self, tenant: str, baseline_id: str, artifact_id: str) -> BaselineRecord:
        """Makes the tenant's PNG artifact the image of its baseline `baseline_id`."""
        current = await self._table.get(tenant, baseline_id)
        image = await self._copy_artifact(tenant, baseline_id, artifact_id)
        try:
            record, before = await self._table.replace_image(
                tenant, baseline_id, artifact_id, image
            )
        except BaseException:
            # The same bytes as the current image have the current image's key.
            if image.object_key != current.object_key:
                await self._discard(image.object_key)
            raise
        if before != image.object_key:
            await self._discard(before)
        return record

    async def page(
        self, tenant: str, name: str, size: int, after: Cursor | None
    ) -> list[BaselineRecord]:
        """Up to `size` of the tenant's baselines (of `name` if set), most recently set first."""
        return await self._table.page(tenant, name, size, after)

    async def delete(self, tenant: str, baseline_id: str) -> None:
        """Deletes the tenant's baseline: the row goes only once its image is gone."""
        async with self._table.deleting(tenant, baseline_id) as record:
            await self._blobs.remove(record.object_key)

    async def _copy_artifact(self, tenant: str, baseline_id: str, artifact_id: str) -> StoredImage:
        """Copies the tenant's PNG artifact to a key of the baseline's; where it went."""
        artifact = await self._artifacts.get(tenant, artifact_id)
        # A comparison's diff image is a PNG too, and the artifact its result points at.
        if artifact.kind != SCREENSHOT_KIND:
            raise FailedPrecondition(
                f"artifactId: artifact {artifact_id!r} is an {artifact.kind}; a baseline is a "
                f"PNG screenshot ({SCREENSHOT_KIND})"
            )
        if media_type(artifact.content_type) != PNG:
            raise FailedPrecondition(
                f"artifactId: artifact {artifact_id!r} is {artifact.content_type}; a baseline "
                "is a PNG screenshot"
            )
        try:
            data = await self._blobs.get(artifact.object_key)
        except BlobMissing as error:
            raise NotFound("content of artifact", artifact_id) from error
        sha256 = hashlib.sha256(data).hexdigest()
        key = baseline_object_key(tenant, baseline_id, sha256)
        await self._blobs.put(key, data, PNG)
        return StoredImage(object_key=key, size_bytes=len(data), sha256=sha256)

    async def _discard(self, key: str) -> None:
        try:
            await self._blobs.remove(key)
        except FarmError as error:
            log.warning("could not remove the unreferenced S3 object %r: %s", key, error)
