"""The tenants' baselines and profiles in the storage service, through its internal RPCs.

Each call carries the agent's credential and the scheduler's grant of the task or
session it serves (the one its uploads carry), so storage reads and writes only the
tenant's that the grant names; UNAVAILABLE is retried as uploads are.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import grpc
from tenacity import RetryCallState

from farm.storage.v1 import ingest_pb2, ingest_pb2_grpc
from farm_agent.credential import agent_metadata
from farm_agent.errors import TaskFailure
from farm_agent.settings import AgentSettings
from farm_agent.work.uploader import ArtifactOwner, RetryPolicy, why_retried
from farm_core.saved import BaselineKey
from farm_core.server import MAX_MESSAGE_BYTES
from farm_core.task_errors import ErrorCode
from farm_core.transport import aio_channel

log = logging.getLogger(__name__)

Reply = TypeVar("Reply")


@dataclass(frozen=True)
class BaselineImage:
    """A baseline's id and its image."""

    id: str
    image: bytes


@dataclass(frozen=True)
class MadeBaseline:
    """The baseline of a key after a create: its id, and whether the create made it."""

    id: str
    created: bool


class SavedState(Protocol):
    """Reads and keeps a tenant's baselines and profiles; failures are TaskFailures.

    Each call is for `owner`, the task or session at hand: its tenant's baselines and
    profiles, with its grant.
    """

    async def baseline_image(self, owner: ArtifactOwner, key: BaselineKey) -> BaselineImage | None:
        """The key's baseline and its image; None when the key has none."""
        ...

    async def create_baseline(
        self, owner: ArtifactOwner, key: BaselineKey, artifact_id: str
    ) -> MadeBaseline:
        """Makes the stored artifact the key's baseline unless it has one."""
        ...

    async def load_profile(self, owner: ArtifactOwner, name: str) -> bytes:
        """The profile's state (Playwright's storage state, JSON); empty when there is none."""
        ...

    async def save_profile(self, owner: ArtifactOwner, name: str, state: bytes) -> None:
        """Saves the profile's state, replacing the one saved before."""
        ...


class StorageSavedState:
    """SavedState over gRPC to the storage service, with the agent's credential."""

    def __init__(self, settings: AgentSettings, retry: RetryPolicy | None = None) -> None:
        self._credential = settings.credential
        self._address = settings.storage_address
        self._retry = retry or RetryPolicy(outage_seconds=settings.upload_outage_seconds)
        self._channel = aio_channel(
            settings.storage_address,
            settings.internal_tls(),
            # A baseline's image comes in one answer, as large as the services send.
            options=(("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),),
        )
        self._stub = ingest_pb2_grpc.ArtifactIngestServiceStub(self._channel)

    async def baseline_image(self, owner: ArtifactOwner, key: BaselineKey) -> BaselineImage | None:
        request = ingest_pb2.GetBaselineImageRequest(key=key.message(), grant=owner.grant)
        try:
            reply: ingest_pb2.GetBaselineImageResponse = await self._call(
                "the baseline", owner, self._stub.GetBaselineImage, request
            )
        except _Missing:
            return None
        return BaselineImage(reply.baseline.id, reply.image)

    async def create_baseline(
        self, owner: ArtifactOwner, key: BaselineKey, artifact_id: str
    ) -> MadeBaseline:
        request = ingest_pb2.CreateBaselineRequest(
            key=key.message(), artifact_id=artifact_id, grant=owner.grant
        )
        reply: ingest_pb2.CreateBaselineResponse = await self._call(
            "the baseline", owner, self._stub.CreateBaseline, request
        )
        return MadeBaseline(reply.baseline.id, reply.created)

    async def load_profile(self, owner: ArtifactOwner, name: str) -> bytes:
        request = ingest_pb2.GetProfileStateRequest(name=name, grant=owner.grant)
        try:
            reply: ingest_pb2.GetProfileStateResponse = await self._call(
                f"profile {name!r}", owner, self._stub.GetProfileState, request
            )
        except _Missing:
            return b""
        return reply.state

    async def save_profile(self, owner: ArtifactOwner, name: str, state: bytes) -> None:
        request = ingest_pb2.SaveProfileRequest(name=name, state=state, grant=owner.grant)
        await self._call(f"profile {name!r}", owner, self._stub.SaveProfile, request)

    async def close(self) -> None:
        """Closes the gRPC channel."""
        await self._channel.close()

    async def _call(
        self,
        what: str,
        owner: ArtifactOwner,
        method: Callable[..., Awaitable[Reply]],
        request: object,
    ) -> Reply:
        """One call, retried while storage is UNAVAILABLE; errors become TaskFailures."""

        def announce_retry(retry_state: RetryCallState) -> None:
            log.info(
                "%s for %s; retrying in %.1f s",
                why_retried(retry_state),
                what,
                retry_state.upcoming_sleep,
            )

        async def attempt() -> Reply:
            return await method(
                request,
                # The tenant too: a storage older than the grants reads it from there.
                metadata=agent_metadata(self._credential, owner.tenant),
                timeout=self._retry.call_timeout(owner.deadline),
            )

        try:
            return await self._retry.retrying(announce_retry, deadline=owner.deadline)(attempt)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise _Missing(what) from error
            raise _failure(what, self._address, error) from error


class _Missing(LookupError):
    """Storage has no such baseline or profile (which callers expect now and then)."""


def _failure(what: str, address: str, error: grpc.aio.AioRpcError) -> TaskFailure:
    """The TaskFailure for a storage call that failed."""
    code = error.code()
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        # Another attempt would be refused the same way.
        return TaskFailure(ErrorCode.QUOTA_EXCEEDED, f"{what} was refused: {error.details()}")
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
        return TaskFailure(ErrorCode.INTERNAL, f"{what} was refused: {error.details()}")
    return TaskFailure(
        ErrorCode.UPLOAD_FAILED,
        f"storage at {address} failed on {what}: {code.name}: {error.details()}",
    )
