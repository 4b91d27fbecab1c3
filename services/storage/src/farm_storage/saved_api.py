"""BaselineService and ProfileService for users; the checks and messages agents' calls share."""

from typing import Any

from farm.storage.v1 import (
    baselines_pb2,
    baselines_pb2_grpc,
    ingest_pb2,
    profiles_pb2,
    profiles_pb2_grpc,
)
from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from farm_core.identity import current_identity
from farm_core.paging import Cursor, read_page
from farm_core.saved import MAX_BASELINE_URL_CHARS, BaselineKey, check_saved_name
from farm_core.task_limits import MAX_VIEWPORT_PIXELS
from farm_core.timestamps import to_timestamp
from farm_storage.baselines import BaselineLibrary
from farm_storage.ingest import OWNER_PATTERN
from farm_storage.profiles import ProfileLibrary
from farm_storage.saved_store import BaselineRecord, ProfileRecord


def checked_tenant(tenant: str) -> str:
    """`tenant`, fit to be part of an S3 key; InvalidArgument otherwise."""
    if not OWNER_PATTERN.fullmatch(tenant):
        raise InvalidArgument("tenant", "must be 1 to 128 letters, digits, '.', '_' or '-'")
    return tenant


def caller_tenant() -> str:
    """The tenant of the caller's identity, fit to be part of an S3 key."""
    return checked_tenant(current_identity().tenant)


def baseline_key(key: ingest_pb2.BaselineKey) -> BaselineKey:
    """The key of a request, checked; InvalidArgument names the bad field."""
    check_saved_name("key.name", key.name)
    if not key.url.startswith(("http://", "https://")) or len(key.url) > MAX_BASELINE_URL_CHARS:
        raise InvalidArgument(
            "key.url",
            f"must be an http or https URL of at most {MAX_BASELINE_URL_CHARS} characters",
        )
    for field, value in (("width", key.viewport.width), ("height", key.viewport.height)):
        if not 1 <= value <= MAX_VIEWPORT_PIXELS:
            raise InvalidArgument(
                f"key.viewport.{field}", f"must be between 1 and {MAX_VIEWPORT_PIXELS}, got {value}"
            )
    return BaselineKey.of(key)


def required(field: str, value: str) -> str:
    """`value`, or InvalidArgument naming `field` when it is empty."""
    if not value:
        raise InvalidArgument(field, "must be set")
    return value


def baseline_message(record: BaselineRecord) -> baselines_pb2.Baseline:
    """The API's view of a stored baseline."""
    return baselines_pb2.Baseline(
        id=record.id,
        tenant=record.tenant,
        name=record.name,
        url=record.url,
        viewport=tasks_pb2.Viewport(width=record.viewport_width, height=record.viewport_height),
        artifact_id=record.artifact_id,
        size_bytes=record.size_bytes,
        sha256=record.sha256,
        create_time=to_timestamp(record.create_time),
        update_time=to_timestamp(record.update_time),
    )


def profile_message(record: ProfileRecord) -> profiles_pb2.Profile:
    """The API's view of a saved profile (without its state)."""
    return profiles_pb2.Profile(
        name=record.name,
        tenant=record.tenant,
        size_bytes=record.size_bytes,
        cookies=record.cookies,
        origins=record.origins,
        create_time=to_timestamp(record.create_time),
        update_time=to_timestamp(record.update_time),
    )


class BaselineApi(baselines_pb2_grpc.BaselineServiceServicer):
    """farm.storage.v1.BaselineService: the caller's tenant's baselines."""

    def __init__(self, library: BaselineLibrary) -> None:
        self._library = library

    async def ListBaselines(
        self, request: baselines_pb2.ListBaselinesRequest, context: Any
    ) -> baselines_pb2.ListBaselinesResponse:
        tenant = current_identity().tenant
        page, next_token = await read_page(
            request,
            lambda limit, after: self._library.page(tenant, request.name, limit, after),
            lambda record: Cursor(record.update_time, record.id),
        )
        return baselines_pb2.ListBaselinesResponse(
            baselines=[baseline_message(record) for record in page], next_page_token=next_token
        )

    async def ApproveBaseline(
        self, request: baselines_pb2.ApproveBaselineRequest, context: Any
    ) -> baselines_pb2.Baseline:
        record = await self._library.approve(
            caller_tenant(),
            required("id", request.id),
            required("artifactId", request.artifact_id),
        )
        return baseline_message(record)

    async def DeleteBaseline(
        self, request: baselines_pb2.DeleteBaselineRequest, context: Any
    ) -> baselines_pb2.DeleteBaselineResponse:
        await self._library.delete(current_identity().tenant, required("id", request.id))
        return baselines_pb2.DeleteBaselineResponse()


class ProfileApi(profiles_pb2_grpc.ProfileServiceServicer):
    """farm.storage.v1.ProfileService: the caller's tenant's profiles."""

    def __init__(self, library: ProfileLibrary) -> None:
        self._library = library

    async def ListProfiles(
        self, request: profiles_pb2.ListProfilesRequest, context: Any
    ) -> profiles_pb2.ListProfilesResponse:
        tenant = current_identity().tenant
        page, next_token = await read_page(
            request,
            lambda limit, after: self._library.page(tenant, limit, after),
            lambda record: Cursor(record.update_time, record.name),
        )
        return profiles_pb2.ListProfilesResponse(
            profiles=[profile_message(record) for record in page], next_page_token=next_token
        )

    async def DeleteProfile(
        self, request: profiles_pb2.DeleteProfileRequest, context: Any
    ) -> profiles_pb2.DeleteProfileResponse:
        await self._library.delete(current_identity().tenant, required("name", request.name))
        return profiles_pb2.DeleteProfileResponse()
