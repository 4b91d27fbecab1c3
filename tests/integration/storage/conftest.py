"""The storage service run in-process against real SeaweedFS, on SQLite or PostgreSQL."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import nats
import pytest
from minio import Minio
from nats.aio.msg import Msg

from farm.storage.v1 import (
    artifacts_pb2,
    artifacts_pb2_grpc,
    baselines_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    profiles_pb2_grpc,
)
from farm.tasks.v1 import tasks_pb2
from farm_cli.launcher import infra
from farm_core.artifact_deletions import ARTIFACTS_DELETED_SUBJECT, decode_deletion
from farm_core.identity import IDENTITY_HEADER, TENANT_HEADER, Identity
from farm_core.queue import ensure_audit_stream
from farm_storage.server import StorageService
from farm_storage.settings import StorageSettings
from tests.conftest import NatsServer, S3Server
from tests.helpers import (
    TEST_GRANT_PUBLIC_KEY,
    TEST_PUBLIC_KEY,
    TEST_SIGNER,
    agent_credential,
    grant_for,
    serving,
)

MAX_ARTIFACT_BYTES = 256 * 1024
RPC_TIMEOUT = 10.0

Metadata = tuple[tuple[str, str], ...]


def token(tenant: str, *scopes: str) -> Metadata:
    """Call metadata vouching for a key of `tenant` with `scopes`."""
    identity = Identity(tenant, f"key_{tenant}", frozenset(scopes))
    return ((IDENTITY_HEADER, TEST_SIGNER.encode(identity)),)


def agent_token(tenant: str) -> Metadata:
    """Call metadata of an agent storing what a task of `tenant` made: its credential."""
    return ((IDENTITY_HEADER, agent_credential()), (TENANT_HEADER, tenant))


def storage_settings(
    farm_home: Path, database_url: str, s3: S3Server, bucket: str, nats_url: str = ""
) -> StorageSettings:
    """Settings of a storage service on `database_url` and `bucket` of `s3` (and NATS)."""
    nats: dict[str, Any] = {"NATS_URL": nats_url} if nats_url else {}
    return StorageSettings(
        **nats,
        FARM_HOME=farm_home,
        FARM_IDENTITY_PUBLIC_KEY=TEST_PUBLIC_KEY,
        grant_public_key=TEST_GRANT_PUBLIC_KEY,
        FARM_STORAGE_DATABASE_URL=database_url,
        FARM_STORAGE_S3_ENDPOINT=s3.endpoint,
        FARM_STORAGE_S3_ACCESS_KEY=s3.credentials.access_key,
        FARM_STORAGE_S3_SECRET_KEY=s3.credentials.secret_key,
        FARM_STORAGE_S3_BUCKET=bucket,
        max_artifact_bytes=MAX_ARTIFACT_BYTES,
        cache_eviction_timeout_seconds=2,
        s3_ready_timeout_seconds=30,
        gauges_interval_seconds=0.1,
    )


@dataclass(frozen=True)
class Storage:
    """A running storage service, its stubs, and direct access to its bucket."""

    artifacts: artifacts_pb2_grpc.ArtifactServiceAsyncStub
    ingest: ingest_pb2_grpc.ArtifactIngestServiceAsyncStub
    baselines: baselines_pb2_grpc.BaselineServiceAsyncStub
    profiles: profiles_pb2_grpc.ProfileServiceAsyncStub
    s3: Minio
    bucket: str
    tenant: str
    database_url: str
    # host:port of the service, for clients that open their own channel (the agents').
    address: str
    # The tenant's byte quota the uploads' grants carry; 0 is none.
    max_artifact_bytes: int = 0

    async def upload(
        self,
        task_id: str,
        name: str,
        data: bytes,
        *,
        chunk_bytes: int = 16 * 1024,
        content_type: str = "image/png",
        kind: tasks_pb2.ArtifactKind.ValueType = tasks_pb2.ARTIFACT_KIND_SCREENSHOT,
        tenant: str | None = None,
        metadata: Metadata | None = None,
        grant: str | None = None,
        attempt: int = 0,
        work_sequence: int = 0,
    ) -> ingest_pb2.UploadArtifactResponse:
        """Uploads `data` as the agents do: a header (with the task's grant), then chunks.

        `attempt` and `work_sequence` name the task's attempt that uploads (0: none).
        """
        owner = tenant or self.tenant
        header = ingest_pb2.UploadHeader(
            tenant=owner,
            task_id=task_id,
            name=name,
            kind=kind,
            content_type=content_type,
            grant=grant_for(task_id, owner, self.max_artifact_bytes) if grant is None else grant,
            attempt=attempt,
            work_sequence=work_sequence,
        )
        return await self.send([header], data, chunk_bytes=chunk_bytes, metadata=metadata)

    async def send(
        self,
        headers: list[ingest_pb2.UploadHeader],
        data: bytes,
        *,
        chunk_bytes: int = 16 * 1024,
        metadata: Metadata | None = None,
    ) -> ingest_pb2.UploadArtifactResponse:
        """Sends one message per header, then `data` in chunks."""

        async def requests() -> AsyncIterator[ingest_pb2.UploadArtifactRequest]:
            for header in headers:
                yield ingest_pb2.UploadArtifactRequest(header=header)
            for start in range(0, len(data), chunk_bytes):
                yield ingest_pb2.UploadArtifactRequest(chunk=data[start : start + chunk_bytes])

        response: ingest_pb2.UploadArtifactResponse = await self.ingest.UploadArtifact(
            requests(),
            metadata=metadata or agent_token(headers[0].tenant if headers else "farm"),
            timeout=RPC_TIMEOUT,
        )
        return response

    def reader(self) -> Metadata:
        """Call metadata of a key of the test's tenant that may read artifacts."""
        return token(self.tenant, "artifacts.read")

    def get(self, artifact_id: str, metadata: Metadata | None = None) -> Any:
        """GetArtifact (a call to await) as a reader of the test's tenant, or with `metadata`."""
        return self.artifacts.GetArtifact(
            artifacts_pb2.GetArtifactRequest(id=artifact_id),
            metadata=metadata or self.reader(),
            timeout=RPC_TIMEOUT,
        )

    def content(self, artifact_id: str, metadata: Metadata | None = None) -> Any:
        """GetArtifactContent (a call to await) as a reader, or with `metadata`."""
        return self.artifacts.GetArtifactContent(
            artifacts_pb2.GetArtifactContentRequest(id=artifact_id),
            metadata=metadata or self.reader(),
            timeout=RPC_TIMEOUT,
        )

    def delete(self, artifact_id: str, metadata: Metadata) -> Any:
        """DeleteArtifact (a call to await) with `metadata`."""
        return self.artifacts.DeleteArtifact(
            artifacts_pb2.DeleteArtifactRequest(id=artifact_id),
            metadata=metadata,
            timeout=RPC_TIMEOUT,
        )

    def list_artifacts(self, metadata: Metadata | None = None, **request: Any) -> Any:
        """ListArtifacts (a call to await) as a reader, or with `metadata`."""
        return self.artifacts.ListArtifacts(
            artifacts_pb2.ListArtifactsRequest(**request),
            metadata=metadata or self.reader(),
            timeout=RPC_TIMEOUT,
        )

    async def list_all(self, task_id: str = "") -> list[artifacts_pb2.Artifact]:
        """Every artifact of the test's tenant (of `task_id` if given), newest first."""
        reply = await self.list_artifacts(task_id=task_id, page_size=1000)
        return list(reply.artifacts)

    def object_names(self, prefix: str) -> list[str]:
        """Names of the bucket's objects under `prefix`, straight from S3."""
        return [
            str(found.object_name)
            for found in self.s3.list_objects(self.bucket, prefix=prefix, recursive=True)
        ]


@dataclass
class Evictions:
    """The scheduler's side of artifact deletions, as storage sees it: answers and records them."""

    heard: list[tuple[str, str]]
    # Whether deletions are answered (a scheduler is up).
    answering: bool = True


@pytest.fixture
async def evictions(nats_server: NatsServer) -> AsyncIterator[Evictions]:
    """Answers storage's `artifacts.deleted` requests on NATS, as the scheduler does."""
    evictions = Evictions(heard=[])

    async def answer(message: Msg) -> None:
        if evictions.answering:
            evictions.heard.append(decode_deletion(message.data))
            await message.respond(b"")

    client = await nats.connect(nats_server.url)
    try:
        await client.subscribe(ARTIFACTS_DELETED_SUBJECT, queue="farm-scheduler", cb=answer)
        yield evictions
    finally:
        await client.close()


@pytest.fixture(scope="module")
async def audit_stream(nats_server: NatsServer) -> None:
    """The audit stream, as auth and the scheduler make it in a farm.

    Without it the audit records of a test's calls find no stream, and stopping the
    service waits out its grace trying to send them.
    """
    client = await nats.connect(nats_server.url)
    try:
        await ensure_audit_stream(client.jetstream())
    finally:
        await client.close()


@pytest.fixture
async def storage(
    seaweedfs: S3Server,
    farm_home: Path,
    database_url: str,
    nats_server: NatsServer,
    evictions: Evictions,
    audit_stream: None,
) -> AsyncIterator[Storage]:
    """A storage service on the session's bucket; the test acts as a fresh tenant."""
    settings = storage_settings(
        farm_home, database_url, seaweedfs, seaweedfs.bucket, nats_server.url
    )
    async with serving_storage(settings, seaweedfs, f"tenant-{secrets.token_hex(4)}") as served:
        yield served


@contextlib.asynccontextmanager
async def serving_storage(
    settings: StorageSettings, s3: S3Server, tenant: str
) -> AsyncIterator[Storage]:
    """A storage service with `settings` on a free port, used as `tenant`, until the block ends."""
    async with (
        serving(StorageService(settings), settings) as host,
        grpc.aio.insecure_channel(host.address) as channel,
    ):
        # grpc ships no types: mypy cannot tell that the stubs are made on an aio channel.
        yield Storage(
            artifacts=cast(
                "artifacts_pb2_grpc.ArtifactServiceAsyncStub",
                artifacts_pb2_grpc.ArtifactServiceStub(channel),
            ),
            ingest=cast(
                "ingest_pb2_grpc.ArtifactIngestServiceAsyncStub",
                ingest_pb2_grpc.ArtifactIngestServiceStub(channel),
            ),
            baselines=cast(
                "baselines_pb2_grpc.BaselineServiceAsyncStub",
                baselines_pb2_grpc.BaselineServiceStub(channel),
            ),
            profiles=cast(
                "profiles_pb2_grpc.ProfileServiceAsyncStub",
                profiles_pb2_grpc.ProfileServiceStub(channel),
            ),
            s3=infra.s3_client(s3.endpoint, s3.credentials),
            bucket=settings.s3_bucket,
            tenant=tenant,
            database_url=settings.resolved_database_url(),
            address=host.address,
        )
