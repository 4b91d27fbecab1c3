"""Receiving an upload: the header checked, then the chunks gathered and hashed within a limit."""

import hashlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

from farm.storage.v1 import ingest_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument, ResourceExhausted
from farm_storage.attempts import UNCHECKED, AttemptFence

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# Tenants and task ids become parts of the S3 key, so they must not hold "/".
OWNER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_CONTENT_TYPE_LENGTH = 255

Admission = TypeVar("Admission")


@dataclass(frozen=True)
class ReceivedUpload:
    """A whole upload: what it is, its bytes and their hex SHA-256."""

    tenant: str
    task_id: str
    name: str
    kind: str
    content_type: str
    data: bytes
    sha256: str
    grant: str = ""
    """The scheduler's grant for the task or session (UploadHeader.grant)."""
    fence: AttemptFence = UNCHECKED
    """The task's attempt that sends it (UploadHeader.attempt and work_sequence)."""


def check_header(header: ingest_pb2.UploadHeader) -> str:
    """Validates an upload's header; returns the name of its ArtifactKind."""
    for field, value in (("header.tenant", header.tenant), ("header.taskId", header.task_id)):
        if not OWNER_PATTERN.fullmatch(value):
            raise InvalidArgument(
                field, f"must be 1 to 128 letters, digits, '.', '_' or '-', got {value!r}"
            )
    if not NAME_PATTERN.fullmatch(header.name):
        raise InvalidArgument(
            "header.name", f"must match {NAME_PATTERN.pattern}, got {header.name!r}"
        )
    if header.kind == tasks_pb2.ARTIFACT_KIND_UNSPECIFIED:
        raise InvalidArgument("header.kind", "must be set")
    if header.kind not in tasks_pb2.ArtifactKind.values():
        raise InvalidArgument("header.kind", f"unknown kind {header.kind}")
    if not header.content_type:
        raise InvalidArgument("header.contentType", "must be set")
    if len(header.content_type) > MAX_CONTENT_TYPE_LENGTH:
        raise InvalidArgument(
            "header.contentType", f"must be at most {MAX_CONTENT_TYPE_LENGTH} characters"
        )
    if header.attempt < 0:
        raise InvalidArgument("header.attempt", f"must be 0 or more, got {header.attempt}")
    if header.work_sequence and not header.attempt:
        raise InvalidArgument("header.attempt", "must be set with header.workSequence")
    return tasks_pb2.ArtifactKind.Name(header.kind)


async def receive_upload(
    requests: AsyncIterator[ingest_pb2.UploadArtifactRequest],
    max_bytes: int,
    admit: Callable[[ingest_pb2.UploadHeader], Admission],
) -> tuple[ReceivedUpload, Admission]:
    """Reads a header message and its chunks; ResourceExhausted past `max_bytes`.

    `admit` judges the checked header (who sends, for which task) before any chunk
    is kept, so a refused upload is not read to its end; what it answers comes back
    with the upload.
    """
    first = await anext(requests, None)
    if first is None or not first.HasField("header"):
        raise InvalidArgument("header", "must be set in the first message")
    kind = check_header(first.header)
    admission = admit(first.header)
    chunks: list[bytes] = []
    size = 0
    digest = hashlib.sha256()

    def take(chunk: bytes) -> None:
        nonlocal size
        if size + len(chunk) > max_bytes:
            raise ResourceExhausted(f"artifact exceeds {max_bytes} bytes")
        chunks.append(chunk)
        size += len(chunk)
        digest.update(chunk)

    take(first.chunk)
    async for request in requests:
        if request.HasField("header"):
            raise InvalidArgument("header", "must be set in the first message only")
        take(request.chunk)
    header = first.header
    upload = ReceivedUpload(
        tenant=header.tenant,
        task_id=header.task_id,
        name=header.name,
        kind=kind,
        content_type=header.content_type,
        data=b"".join(chunks),
        sha256=digest.hexdigest(),
        grant=header.grant,
        fence=AttemptFence(header.work_sequence, header.attempt),
    )
    return upload, admission
