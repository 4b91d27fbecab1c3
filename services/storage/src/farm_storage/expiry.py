"""Deletes the artifacts of tasks past the scheduler's retention, as the scheduler asks over NATS.

The scheduler's retention sweep names the owners (tenant, task or session id) whose
artifacts go (farm_core.artifact_expiry); one storage replica answers. For each
owner the rows go first, in one committed transaction, so that no listed artifact
points at a deleted object; then every S3 object under the owner's keys
(`<tenant>/<owner id>/`, blobs.object_key), those of rows gone earlier included.
Should S3 fail there for some owners, the answer says so and names them; the
scheduler keeps those owners' rows and asks again on a later pass: the objects
left behind (no row names them) are collected by that retry. Both steps are
idempotent, so two replicas (or two schedulers) deleting the same owner at once do
no harm.
"""

import asyncio
import logging
from collections.abc import Sequence
from typing import cast

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from prometheus_client import Counter
from sqlalchemy import Table, delete
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_core.artifact_expiry import (
    ARTIFACTS_EXPIRE_SUBJECT,
    ArtifactOwner,
    decode_expiry,
    encode_answer,
)
from farm_core.cancel import cancel_and_wait
from farm_storage.blobs import BlobStore
from farm_storage.models import ArtifactRow
from farm_storage.nats_connection import StorageNats

log = logging.getLogger(__name__)

QUEUE_GROUP = "farm-storage"
"""Each request is answered by one replica: the rows and the bucket are shared."""

artifacts = cast(Table, ArtifactRow.__table__)
artifacts_expired_total = Counter(
    "farm_storage_artifacts_expired_total",
    "Artifacts deleted because their task (or session) passed the scheduler's retention.",
)


class ArtifactExpiry:
    """Answers the scheduler's artifact expiries on storage's NATS connection."""

    def __init__(self, nats: StorageNats, engine: AsyncEngine, blobs: BlobStore) -> None:
        self._nats = nats
        self._engine = engine
        self._blobs = blobs
        self._subscribing: asyncio.Task[Subscription] | None = None

    def start(self) -> None:
        """Subscribes once the connection is made (storage serves meanwhile)."""
        if self._subscribing is None:
            self._subscribing = asyncio.create_task(self._subscribe(), name="artifact-expiry")

    async def close(self) -> None:
        """Answers no more: the scheduler's request then times out and is sent again later."""
        subscribing, self._subscribing = self._subscribing, None
        if subscribing is None:
            return
        if not subscribing.done():
            await cancel_and_wait(subscribing, "subscribing to artifact expiries")
            return
        if subscribing.cancelled() or subscribing.exception() is not None:
            return
        try:
            await subscribing.result().unsubscribe()
        except nats.errors.Error as error:
            log.warning("unsubscribing from artifact expiries failed: %s", error)

    async def expire(self, owners: Sequence[ArtifactOwner]) -> tuple[int, list[ArtifactOwner]]:
        """Deletes the owners' artifact rows, then their objects.

        Returns how many rows went, and the owners whose objects could not all be deleted.
        """
        async with self._engine.begin() as connection:
            deleted = 0
            for owner in owners:
                result = await connection.execute(
                    delete(artifacts).where(
                        artifacts.c.tenant == owner.tenant, artifacts.c.task_id == owner.owner_id
                    )
                )
                deleted += int(getattr(result, "rowcount", 0) or 0)
        artifacts_expired_total.inc(deleted)
        failed = []
        for owner in owners:
            try:
                await self._blobs.remove_under(f"{owner.tenant}/{owner.owner_id}/")
            except Exception as error:
                # One owner's object S3 refuses must not keep the others' tasks.
                log.warning(
                    "deleting the objects of %s/%s failed: %s", owner.tenant, owner.owner_id, error
                )
                failed.append(owner)
        return deleted, failed

    async def _subscribe(self) -> Subscription:
        await self._nats.jetstream()
        client = await self._nats.client(0)
        if client is None:
            raise RuntimeError("storage's NATS connection is made but not there")
        return await client.subscribe(ARTIFACTS_EXPIRE_SUBJECT, queue=QUEUE_GROUP, cb=self._heard)

    async def _heard(self, message: Msg) -> None:
        try:
            owners = decode_expiry(message.data)
        except ValueError as error:
            log.warning("refusing a malformed artifact expiry: %s", error)
            answer = encode_answer(0, f"malformed: {error}")
        else:
            answer = await self._answer(owners)
        if message.reply:
            await message.respond(answer)

    async def _answer(self, owners: Sequence[ArtifactOwner]) -> bytes:
        try:
            deleted, failed = await self.expire(owners)
        except Exception as error:
            # Answered as failed: the scheduler keeps its rows and asks again.
            log.warning(
                "deleting the artifacts of %d expired owner(s) failed: %s", len(owners), error
            )
            return encode_answer(0, f"{type(error).__name__}: {error}")
        if failed:
            return encode_answer(
                deleted, f"the objects of {len(failed)} owner(s) could not be deleted", failed
            )
        return encode_answer(deleted)
