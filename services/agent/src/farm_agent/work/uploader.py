"""Stores a task's artifacts through the storage service's ArtifactIngestService."""

import asyncio
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import grpc
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
)
from tenacity.stop import stop_base

from farm.storage.v1 import artifacts_pb2, ingest_pb2, ingest_pb2_grpc
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import CapturedArtifact
from farm_agent.credential import agent_metadata
from farm_agent.errors import TaskFailure
from farm_agent.settings import AgentSettings
from farm_core.backoff import DoublingWait
from farm_core.task_errors import ErrorCode
from farm_core.transport import aio_channel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArtifactOwner:
    """What artifacts are stored under: a task or a session, its tenant, and the grant for it.

    The grant is the scheduler's (WorkItem.upload_grant, OpenSessionOrder.upload_grant):
    storage stores nothing for an owner the agent was not handed. A task's artifacts
    also name the attempt that made them, so that storage refuses them once a later
    attempt of the task has stored its own; a session's name none (0).
    """

    tenant: str
    owner_id: str
    grant: str
    attempt: int = 0
    """The task's attempt, from 1, as its AgentEvents number it; 0 for a session."""
    work_sequence: int = 0
    """The stream sequence of the WorkItem message the attempt came from."""
    deadline: dt.datetime | None = None
    """The task's deadline: no upload is tried again past it (None: none, or a session)."""
    on_storage_wait: Callable[[str], None] | None = None
    """Hears why, each time an upload is about to be tried again while storage is away."""


class ArtifactUploader(Protocol):
    """Stores one artifact of a task and returns its reference."""

    async def upload(
        self, owner: ArtifactOwner, artifact: CapturedArtifact
    ) -> tasks_pb2.ArtifactRef:
        """Stores `artifact`; raises TaskFailure(UPLOAD_FAILED) when it cannot."""
        ...

    async def close(self) -> None:
        """Releases the connection."""
        ...


def why_retried(retry_state: RetryCallState) -> str:
    """Why a storage call is tried again, with storage's own reason when it gave one.

    `storage unavailable (the database is full (database or disk is full); try again)`
    tells the agent's reader what to fix; a bare "unavailable" did not.
    """
    error = retry_state.outcome.exception() if retry_state.outcome else None
    if error is not None and status_lost(error):
        return "storage's answer lost (grpc/grpc#36066)"
    if isinstance(error, grpc.aio.AioRpcError) and error.details():
        return f"storage unavailable ({error.details()})"
    return "storage unavailable"


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how patiently a storage call is retried while storage is unavailable.

    A call is tried again while storage answers UNAVAILABLE (or grpcio lost its answer,
    see `status_lost`), until a retry would start more than `outage_seconds` after the
    first try (FARM_AGENT_UPLOAD_OUTAGE_SECONDS), or after the deadline, or after
    `attempts` tries when that is set.
    """

    outage_seconds: float = 90.0
    first_delay_seconds: float = 0.2
    max_delay_seconds: float = 5.0
    call_timeout_seconds: float = 120.0
    attempts: int | None = None

    def retrying(
        self,
        before_sleep: Callable[[RetryCallState], None],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        deadline: dt.datetime | None = None,
    ) -> AsyncRetrying:
        """The loop of one call: UNAVAILABLE is tried again after doubling waits, capped.

        `before_sleep` hears of each retry; the error of the last try is raised.
        """
        stops: list[stop_base] = [stop_before_delay(self.outage_seconds)]
        if self.attempts is not None:
            stops.append(stop_after_attempt(self.attempts))
        if deadline is not None:
            # The loop is made for one call: its delay counts from now.
            stops.append(stop_before_delay((deadline - dt.datetime.now(dt.UTC)).total_seconds()))
        return AsyncRetrying(
            stop=stop_any(*stops),
            wait=_AnswerLostOrDoubling(
                DoublingWait(self.first_delay_seconds, self.max_delay_seconds)
            ),
            retry=retry_if_exception(_worth_retrying),
            before_sleep=before_sleep,
            sleep=sleep,
            reraise=True,
        )

    def call_timeout(self, deadline: dt.datetime | None) -> float:
        """The time one call may take: `call_timeout_seconds`, cut short by the deadline."""
        if deadline is None:
            return self.call_timeout_seconds
        left = (deadline - dt.datetime.now(dt.UTC)).total_seconds()
        return max(MIN_CALL_SECONDS, min(self.call_timeout_seconds, left))

    def outage_told(self, elapsed_seconds: float, tries: int, deadline: dt.datetime | None) -> str:
        """What ends an error message of a call given up on while storage stayed unavailable."""
        left = self.outage_seconds - elapsed_seconds
        if deadline is not None and (deadline - dt.datetime.now(dt.UTC)).total_seconds() < left:
            bound = f"the task's deadline {deadline.isoformat()} left no time for another try"
        elif self.attempts is not None and tries >= self.attempts:
            bound = f"{self.attempts} tries are the most a call gets"
        else:
            bound = (
                f"{self.outage_seconds:g} s is the longest outage a call waits out "
                "(FARM_AGENT_UPLOAD_OUTAGE_SECONDS)"
            )
        return (
            f"; storage stayed unavailable through {tries} tries over "
            f"{elapsed_seconds:.1f} s and {bound}"
        )


MIN_CALL_SECONDS = 1.0
"""The least time a call is given, even when the deadline leaves less (it then fails fast)."""


CORE_WRITE_FAILED = "Internal error from Core"
"""The details grpc.aio gives the INTERNAL status it sets itself when a client's write fails."""


def _storage_unavailable(error: BaseException) -> bool:
    return isinstance(error, grpc.aio.AioRpcError) and error.code() == grpc.StatusCode.UNAVAILABLE


def status_lost(error: BaseException) -> bool:
    """Whether grpc.aio put its own INTERNAL in place of the status storage ended the call with.

    Storage ends an upload it refuses (UNAVAILABLE, UNAUTHENTICATED, RESOURCE_EXHAUSTED) at
    its header, while the agent may still be writing chunks. grpc.aio (up to at least 1.85)
    then at times reports the failed write rather than storage's status, and the call keeps
    no copy of it (grpc/grpc#36066). The upload is tried again, as for UNAVAILABLE: it is
    idempotent, and the retry hears storage's answer. A server's own INTERNAL (a stale
    attempt) has other details and stays final.
    """
    return (
        isinstance(error, grpc.aio.AioRpcError)
        and error.code() == grpc.StatusCode.INTERNAL
        and error.details() == CORE_WRITE_FAILED
    )


def _worth_retrying(error: BaseException) -> bool:
    return _storage_unavailable(error) or status_lost(error)


@dataclass(frozen=True)
class _AnswerLostOrDoubling:
    """No wait after a lost status (storage answered; the retry is to hear what), else doubling."""

    doubling: DoublingWait

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        return 0.0 if error is not None and status_lost(error) else self.doubling(retry_state)


def artifact_ref(artifact: artifacts_pb2.Artifact) -> tasks_pb2.ArtifactRef:
    """The reference a task result carries for a stored artifact."""
    return tasks_pb2.ArtifactRef(
        id=artifact.id,
        kind=artifact.kind,
        content_type=artifact.content_type,
        size_bytes=artifact.size_bytes,
        sha256=artifact.sha256,
    )


class StorageUploader:
    """Streams artifacts to storage, the header with the first chunk, as the agent's credential."""

    def __init__(
        self,
        settings: AgentSettings,
        retry: RetryPolicy | None = None,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        """`on_refused` hears that storage refused the agent's credential (revoked, expired)."""
        self._on_refused = on_refused
        self._credential = settings.credential
        self._chunk_bytes = settings.upload_chunk_bytes
        self._address = settings.storage_address
        self._retry = retry or RetryPolicy(outage_seconds=settings.upload_outage_seconds)
        self._channel = aio_channel(settings.storage_address, settings.internal_tls())
        self._stub = ingest_pb2_grpc.ArtifactIngestServiceStub(self._channel)

    async def upload(
        self, owner: ArtifactOwner, artifact: CapturedArtifact
    ) -> tasks_pb2.ArtifactRef:
        """Stores `artifact`, retrying while storage is UNAVAILABLE; raises TaskFailure."""

        def announce_retry(retry_state: RetryCallState) -> None:
            why = why_retried(retry_state)
            log.info(
                "%s for %s of task %s; retrying in %.1f s",
                why,
                artifact.name,
                owner.owner_id,
                retry_state.upcoming_sleep,
            )
            if owner.on_storage_wait is not None:
                owner.on_storage_wait(why)

        retrying = self._retry.retrying(announce_retry, deadline=owner.deadline)
        started = time.monotonic()
        try:
            response: ingest_pb2.UploadArtifactResponse = await retrying(
                self._send, owner, artifact
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                # Another attempt would store the same bytes: the failure is final.
                raise TaskFailure(
                    ErrorCode.QUOTA_EXCEEDED,
                    f"storing the {artifact.name} was refused: {error.details()}",
                ) from error
            if error.code() == grpc.StatusCode.UNAUTHENTICATED and self._on_refused is not None:
                # No later upload of this agent can succeed: it would fail every task it takes.
                log.error(
                    "storage refused this agent's credential (%s); the agent drains. "
                    "Give it a new one (farm credential agent NAME; farm up: restart the farm)",
                    error.details(),
                )
                self._on_refused()
            outage = ""
            if _storage_unavailable(error):
                tries = retrying.statistics.get("attempt_number", 1)
                outage = self._retry.outage_told(time.monotonic() - started, tries, owner.deadline)
            elif status_lost(error):
                outage = " (grpcio lost storage's answer to the last try: grpc/grpc#36066)"
            raise TaskFailure(
                ErrorCode.UPLOAD_FAILED,
                f"storing the {artifact.name} at {self._address} failed: "
                f"{error.code().name}: {error.details()}{outage}",
            ) from error
        return artifact_ref(response.artifact)

    async def close(self) -> None:
        """Closes the gRPC channel."""
        await self._channel.close()

    async def _send(
        self, owner: ArtifactOwner, artifact: CapturedArtifact
    ) -> ingest_pb2.UploadArtifactResponse:
        """One attempt: the header (with the grant) and the chunks, with the agent's identity."""
        response: ingest_pb2.UploadArtifactResponse = await self._stub.UploadArtifact(
            self._requests(owner, artifact),
            metadata=agent_metadata(self._credential, owner.tenant),
            timeout=self._retry.call_timeout(owner.deadline),
        )
        return response

    async def _requests(
        self, owner: ArtifactOwner, artifact: CapturedArtifact
    ) -> AsyncIterator[ingest_pb2.UploadArtifactRequest]:
        size = self._chunk_bytes
        # The header carries the first chunk: an artifact of one chunk (a screenshot,
        # mostly) is one message, which storage and the agent each handle once.
        yield ingest_pb2.UploadArtifactRequest(
            header=ingest_pb2.UploadHeader(
                tenant=owner.tenant,
                task_id=owner.owner_id,
                name=artifact.name,
                kind=artifact.kind,
                content_type=artifact.content_type,
                grant=owner.grant,
                attempt=owner.attempt,
                work_sequence=owner.work_sequence,
            ),
            chunk=artifact.data[:size],
        )
        for start in range(size, len(artifact.data), size):
            yield ingest_pb2.UploadArtifactRequest(chunk=artifact.data[start : start + size])
