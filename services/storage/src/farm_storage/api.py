"""The storage service's RPC handlers: validate the request, act on the library, answer."""

from collections.abc import AsyncIterator
from typing import Any

from google.api import httpbody_pb2  # type: ignore[import-untyped]

from farm.storage.v1 import artifacts_pb2, artifacts_pb2_grpc, ingest_pb2, ingest_pb2_grpc
from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument, PermissionDenied
from farm_core.grants import GrantVerifier, UploadGrant
from farm_core.identity import current_identity
from farm_core.paging import Cursor, read_page
from farm_core.timestamps import to_timestamp
from farm_storage.baselines import BaselineLibrary
from farm_storage.download import content_headers
from farm_storage.grant_names import GrantNameCheck
from farm_storage.ingest import receive_upload
from farm_storage.library import ArtifactLibrary
from farm_storage.profiles import ProfileLibrary
from farm_storage.saved_api import (
    baseline_key,
    baseline_message,
    checked_tenant,
    profile_message,
    required,
)
from farm_storage.store import ArtifactRecord


def artifact_message(record: ArtifactRecord) -> artifacts_pb2.Artifact:
    """The API's view of a stored artifact."""
    return artifacts_pb2.Artifact(
        id=record.id,
        task_id=record.task_id,
        kind=tasks_pb2.ArtifactKind.Value(record.kind),
        content_type=record.content_type,
        size_bytes=record.size_bytes,
        sha256=record.sha256,
        create_time=to_timestamp(record.create_time),
        tenant=record.tenant,
        name=record.name,
    )


def _artifact_id(artifact_id: str) -> str:
    if not artifact_id:
        raise InvalidArgument("id", "must be set")
    return artifact_id


class ArtifactApi(artifacts_pb2_grpc.ArtifactServiceServicer):
    """farm.storage.v1.ArtifactService: the caller's tenant's artifacts."""

    def __init__(self, library: ArtifactLibrary) -> None:
        self._library = library

    async def GetArtifact(
        self, request: artifacts_pb2.GetArtifactRequest, context: Any
    ) -> artifacts_pb2.Artifact:
        record = await self._library.get(current_identity().tenant, _artifact_id(request.id))
        return artifact_message(record)

    async def GetArtifactContent(
        self, request: artifacts_pb2.GetArtifactContentRequest, context: Any
    ) -> httpbody_pb2.HttpBody:
        record, data = await self._library.content(
            current_identity().tenant, _artifact_id(request.id)
        )
        await context.send_initial_metadata(content_headers(record))
        return httpbody_pb2.HttpBody(content_type=record.content_type, data=data)

    async def ListArtifacts(
        self, request: artifacts_pb2.ListArtifactsRequest, context: Any
    ) -> artifacts_pb2.ListArtifactsResponse:
        tenant = current_identity().tenant
        page, next_token = await read_page(
            request,
            lambda limit, after: self._library.page(tenant, request.task_id, limit, after),
            lambda record: Cursor(record.create_time, record.id),
        )
        return artifacts_pb2.ListArtifactsResponse(
            artifacts=[artifact_message(record) for record in page], next_page_token=next_token
        )

    async def DeleteArtifact(
        self, request: artifacts_pb2.DeleteArtifactRequest, context: Any
    ) -> artifacts_pb2.DeleteArtifactResponse:
        await self._library.delete(current_identity().tenant, _artifact_id(request.id))
        return artifacts_pb2.DeleteArtifactResponse()


class IngestApi(ingest_pb2_grpc.ArtifactIngestServiceServicer):
    """farm.storage.v1.ArtifactIngestService: the agents' uploads, baselines and profiles."""

    def __init__(
        self,
        library: ArtifactLibrary,
        max_artifact_bytes: int,
        baselines: BaselineLibrary,
        profiles: ProfileLibrary,
        grants: GrantVerifier,
        names: GrantNameCheck | None = None,
    ) -> None:
        self._library = library
        self._grants = grants
        self._names = names or GrantNameCheck()
        self._max_artifact_bytes = max_artifact_bytes
        self._baselines = baselines
        self._profiles = profiles

    async def UploadArtifact(
        self,
        request_iterator: AsyncIterator[ingest_pb2.UploadArtifactRequest],
        context: Any,
    ) -> ingest_pb2.UploadArtifactResponse:
        upload, grant = await receive_upload(
            request_iterator, self._max_artifact_bytes, self._admit
        )
        record = await self._library.store_upload(upload, grant.max_artifact_bytes)
        return ingest_pb2.UploadArtifactResponse(artifact=artifact_message(record))

    def _admit(self, header: ingest_pb2.UploadHeader) -> UploadGrant:
        """The upload's grant, checked before its bytes are read; refuses another tenant's."""
        if header.tenant != current_identity().tenant:
            raise PermissionDenied(
                f"header.tenant: this call acts for tenant {current_identity().tenant!r}, "
                f"not {header.tenant!r}"
            )
        # Only for a task or session the agent was handed: the scheduler's grant says so.
        return self._grants.verify(header.grant, header.task_id, header.tenant, "header.grant")

    def _granted(self, grant: str) -> tuple[UploadGrant, str]:
        """The grant of the task or session the call serves, and the tenant it names.

        A tenant the caller names (`x-farm-tenant`) must be the grant's: an agent's
        credential alone reads and writes no tenant's baselines or profiles. The
        caller then checks the name the call is for against the grant's names.
        """
        granted = self._grants.read(grant, "grant")
        named = current_identity().tenant
        if named and named != granted.tenant:
            raise PermissionDenied(
                f"grant: the grant is for tenant {granted.tenant!r}, "
                f"but the call acts for {named!r}"
            )
        return granted, checked_tenant(granted.tenant)

    async def GetBaselineImage(
        self, request: ingest_pb2.GetBaselineImageRequest, context: Any
    ) -> ingest_pb2.GetBaselineImageResponse:
        granted, tenant = self._granted(request.grant)
        key = baseline_key(request.key)
        self._names.baseline(granted, key.name)
        record, image = await self._baselines.image(tenant, key)
        return ingest_pb2.GetBaselineImageResponse(baseline=baseline_message(record), image=image)

    async def CreateBaseline(
        self, request: ingest_pb2.CreateBaselineRequest, context: Any
    ) -> ingest_pb2.CreateBaselineResponse:
        granted, tenant = self._granted(request.grant)
        key = baseline_key(request.key)
        self._names.baseline(granted, key.name)
        record, created = await self._baselines.create(
            tenant, key, required("artifactId", request.artifact_id)
        )
        return ingest_pb2.CreateBaselineResponse(baseline=baseline_message(record), created=created)

    async def GetProfileState(
        self, request: ingest_pb2.GetProfileStateRequest, context: Any
    ) -> ingest_pb2.GetProfileStateResponse:
        granted, tenant = self._granted(request.grant)
        self._names.load_profile(granted, request.name)
        record, state = await self._profiles.state(tenant, request.name)
        return ingest_pb2.GetProfileStateResponse(profile=profile_message(record), state=state)

    async def SaveProfile(
        self, request: ingest_pb2.SaveProfileRequest, context: Any
    ) -> ingest_pb2.SaveProfileResponse:
        granted, tenant = self._granted(request.grant)
        self._names.save_profile(granted, request.name)
        record = await self._profiles.save(tenant, request.name, request.state)
        return ingest_pb2.SaveProfileResponse(profile=profile_message(record))
