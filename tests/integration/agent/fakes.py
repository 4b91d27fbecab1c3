"""In-memory stand-ins for the storage service, for the agent's tests."""

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import grpc

from farm.storage.v1 import artifacts_pb2, ingest_pb2, ingest_pb2_grpc
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import CapturedArtifact
from farm_agent.errors import TaskFailure
from farm_agent.saved.client import BaselineImage, MadeBaseline, SavedState
from farm_agent.saved.keeper import CaptureKeeper
from farm_agent.work.uploader import ArtifactOwner, ArtifactUploader
from farm_core.identity import Identity, current_identity
from farm_core.saved import BaselineKey
from farm_core.task_errors import ErrorCode

UPLOAD_METHOD = "/farm.storage.v1.ArtifactIngestService/UploadArtifact"


@dataclass(frozen=True)
class StoredUpload:
    """One upload as the fake storage service received it."""

    identity: Identity
    header: ingest_pb2.UploadHeader
    # The chunk of each message, the header's first (empty if it came alone).
    chunks: list[bytes]


class FakeIngest(ingest_pb2_grpc.ArtifactIngestServiceServicer):
    """ArtifactIngestService that keeps uploads in memory; can refuse the first ones."""

    def __init__(self) -> None:
        self.stored: list[StoredUpload] = []
        self.unavailable_left = 0
        # Statuses the next uploads are ended with, in order, before any UNAVAILABLE.
        self.refusals: list[tuple[grpc.StatusCode, str]] = []

    async def UploadArtifact(
        self,
        request_iterator: AsyncIterator[ingest_pb2.UploadArtifactRequest],
        context: grpc.aio.ServicerContext,
    ) -> ingest_pb2.UploadArtifactResponse:
        if self.refusals:
            # Read to the end first: ended while the agent still writes, the call may reach
            # it as grpcio's own INTERNAL instead of this status (grpc/grpc#36066).
            async for _ in request_iterator:
                pass
            await context.abort(*self.refusals.pop(0))
        if self.unavailable_left:
            self.unavailable_left -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "storage warming up")
        requests = [request async for request in request_iterator]
        # As storage does: the first message's chunk, if any, is the first chunk.
        header, chunks = requests[0].header, [request.chunk for request in requests]
        self.stored.append(StoredUpload(current_identity(), header, chunks))
        data = b"".join(chunks)
        return ingest_pb2.UploadArtifactResponse(
            artifact=artifacts_pb2.Artifact(
                id=f"artifact-{len(self.stored)}",
                task_id=header.task_id,
                kind=header.kind,
                content_type=header.content_type,
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                tenant=header.tenant,
                name=header.name,
            )
        )


@dataclass(frozen=True)
class FakeStorage:
    """The running fake storage service: where it listens and what it received."""

    address: str
    ingest: FakeIngest


class FakeUploader:
    """Stands in for the storage service: keeps uploads, can fail the next few."""

    def __init__(self) -> None:
        self.uploads: list[tuple[str, str, CapturedArtifact]] = []
        # The grant each upload showed, in order.
        self.grants: list[str] = []
        self.failures_left = 0

    async def upload(
        self, owner: ArtifactOwner, artifact: CapturedArtifact
    ) -> tasks_pb2.ArtifactRef:
        if self.failures_left:
            self.failures_left -= 1
            raise TaskFailure(ErrorCode.UPLOAD_FAILED, "storage is down (test)")
        self.grants.append(owner.grant)
        self.uploads.append((owner.tenant, owner.owner_id, artifact))
        return tasks_pb2.ArtifactRef(
            id=f"artifact-{len(self.uploads)}",
            kind=artifact.kind,
            content_type=artifact.content_type,
            size_bytes=len(artifact.data),
            sha256=hashlib.sha256(artifact.data).hexdigest(),
        )

    async def close(self) -> None:
        pass


class FakeSavedState:
    """Stands in for storage's baselines and profiles: in memory, per tenant."""

    def __init__(self, uploader: FakeUploader) -> None:
        self._uploader = uploader
        self.baselines: dict[tuple[str, BaselineKey], BaselineImage] = {}
        self.profiles: dict[tuple[str, str], bytes] = {}
        # The owner (task or session, with its grant) of each call, in order.
        self.owners: list[ArtifactOwner] = []

    async def baseline_image(self, owner: ArtifactOwner, key: BaselineKey) -> BaselineImage | None:
        self.owners.append(owner)
        return self.baselines.get((owner.tenant, key))

    async def create_baseline(
        self, owner: ArtifactOwner, key: BaselineKey, artifact_id: str
    ) -> MadeBaseline:
        self.owners.append(owner)
        tenant = owner.tenant
        existing = self.baselines.get((tenant, key))
        if existing is not None:
            return MadeBaseline(existing.id, created=False)
        number = int(artifact_id.removeprefix("artifact-"))
        stored_tenant, _, artifact = self._uploader.uploads[number - 1]
        assert stored_tenant == tenant, "a baseline made from another tenant's artifact"
        made = BaselineImage(f"bsl_{len(self.baselines) + 1}", artifact.data)
        self.baselines[(tenant, key)] = made
        return MadeBaseline(made.id, created=True)

    async def load_profile(self, owner: ArtifactOwner, name: str) -> bytes:
        self.owners.append(owner)
        return self.profiles.get((owner.tenant, name), b"")

    async def save_profile(self, owner: ArtifactOwner, name: str, state: bytes) -> None:
        self.owners.append(owner)
        self.profiles[(owner.tenant, name)] = state


def keeper_of(uploader: FakeUploader, saved: FakeSavedState | None = None) -> CaptureKeeper:
    """A CaptureKeeper that stores into the fakes (without `saved`: no baselines or profiles)."""
    return CaptureKeeper(cast(ArtifactUploader, uploader), cast(SavedState | None, saved))
