"""Receiving uploads: header rules, size limit, digest."""

import hashlib
from collections.abc import AsyncIterator

import pytest

from farm.storage.v1 import ingest_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument, PermissionDenied, ResourceExhausted
from farm_storage.attempts import AttemptFence
from farm_storage.ingest import check_header, receive_upload

HEADER = ingest_pb2.UploadHeader(
    tenant="acme",
    task_id="task_0123abcd",
    name="screenshot",
    kind=tasks_pb2.ARTIFACT_KIND_SCREENSHOT,
    content_type="image/png",
)


async def stream(
    *messages: ingest_pb2.UploadArtifactRequest,
) -> AsyncIterator[ingest_pb2.UploadArtifactRequest]:
    for message in messages:
        yield message


def chunk(data: bytes) -> ingest_pb2.UploadArtifactRequest:
    return ingest_pb2.UploadArtifactRequest(chunk=data)


def admit_all(header: ingest_pb2.UploadHeader) -> str:
    return header.task_id


async def test_chunks_are_joined_and_hashed() -> None:
    upload, _ = await receive_upload(
        stream(ingest_pb2.UploadArtifactRequest(header=HEADER, chunk=b"ab"), chunk(b"cd")),
        max_bytes=4,
        admit=admit_all,
    )

    assert upload.data == b"abcd"
    assert upload.sha256 == hashlib.sha256(b"abcd").hexdigest()
    assert (upload.tenant, upload.task_id, upload.name) == ("acme", "task_0123abcd", "screenshot")
    assert (upload.kind, upload.content_type) == ("ARTIFACT_KIND_SCREENSHOT", "image/png")
    assert not upload.fence.checked


async def test_the_attempt_the_header_names_comes_with_the_upload() -> None:
    header = ingest_pb2.UploadHeader(attempt=2, work_sequence=7)
    header.MergeFrom(HEADER)
    upload, _ = await receive_upload(
        stream(ingest_pb2.UploadArtifactRequest(header=header)), 10, admit_all
    )

    assert upload.fence == AttemptFence(work_sequence=7, attempt=2)


async def test_empty_artifact_is_accepted() -> None:
    upload, _ = await receive_upload(
        stream(ingest_pb2.UploadArtifactRequest(header=HEADER)), 10, admit_all
    )

    assert upload.data == b""
    assert upload.sha256 == hashlib.sha256(b"").hexdigest()


async def test_exactly_the_limit_is_accepted() -> None:
    upload, _ = await receive_upload(
        stream(ingest_pb2.UploadArtifactRequest(header=HEADER), chunk(b"abc"), chunk(b"d")),
        max_bytes=4,
        admit=admit_all,
    )

    assert upload.data == b"abcd"


async def test_one_byte_over_the_limit_is_refused() -> None:
    with pytest.raises(ResourceExhausted, match=r"^artifact exceeds 4 bytes$"):
        await receive_upload(
            stream(ingest_pb2.UploadArtifactRequest(header=HEADER), chunk(b"abc"), chunk(b"de")),
            max_bytes=4,
            admit=admit_all,
        )


async def test_reading_stops_at_the_limit() -> None:
    sent: list[int] = []

    async def endless() -> AsyncIterator[ingest_pb2.UploadArtifactRequest]:
        yield ingest_pb2.UploadArtifactRequest(header=HEADER)
        for n in range(1000):
            sent.append(n)
            yield chunk(b"x" * 10)

    with pytest.raises(ResourceExhausted):
        await receive_upload(endless(), max_bytes=25, admit=admit_all)
    assert len(sent) == 3


@pytest.mark.parametrize(
    "messages",
    [
        (),
        (chunk(b"data"),),
    ],
    ids=["empty stream", "chunk first"],
)
async def test_header_must_come_first(messages: tuple[ingest_pb2.UploadArtifactRequest]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await receive_upload(stream(*messages), max_bytes=10, admit=admit_all)
    assert caught.value.field == "header"


async def test_a_second_header_is_refused() -> None:
    header_message = ingest_pb2.UploadArtifactRequest(header=HEADER)
    with pytest.raises(InvalidArgument) as caught:
        await receive_upload(stream(header_message, header_message), max_bytes=10, admit=admit_all)
    assert caught.value.field == "header"


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("header.tenant", {"tenant": ""}),
        ("header.tenant", {"tenant": "acme/other"}),
        ("header.taskId", {"task_id": ""}),
        ("header.taskId", {"task_id": "t" * 129}),
        ("header.name", {"name": ""}),
        ("header.name", {"name": "has space"}),
        ("header.name", {"name": "UPPER"}),
        ("header.name", {"name": ".hidden"}),
        ("header.name", {"name": "n" * 65}),
        ("header.kind", {"kind": tasks_pb2.ARTIFACT_KIND_UNSPECIFIED}),
        ("header.kind", {"kind": 42}),
        ("header.contentType", {"content_type": ""}),
        ("header.contentType", {"content_type": "x/" + "y" * 300}),
        ("header.attempt", {"attempt": -1}),
        ("header.attempt", {"work_sequence": 7}),
    ],
)
def test_bad_header_field_is_named(field: str, change: dict[str, object]) -> None:
    header = ingest_pb2.UploadHeader()
    header.CopyFrom(HEADER)
    for name, value in change.items():
        setattr(header, name, value)

    with pytest.raises(InvalidArgument) as caught:
        check_header(header)
    assert caught.value.field == field


@pytest.mark.parametrize("name", ["a", "screenshot", "page-1.pdf", "x_y", "0" * 64])
def test_good_names_are_accepted(name: str) -> None:
    header = ingest_pb2.UploadHeader()
    header.CopyFrom(HEADER)
    header.name = name

    assert check_header(header) == "ARTIFACT_KIND_SCREENSHOT"


async def test_a_refused_header_is_refused_before_any_chunk_is_read() -> None:
    sent: list[int] = []

    async def upload() -> AsyncIterator[ingest_pb2.UploadArtifactRequest]:
        yield ingest_pb2.UploadArtifactRequest(header=HEADER, chunk=b"x" * 10)
        for n in range(100):
            sent.append(n)
            yield chunk(b"x" * 10)

    def refuse(header: ingest_pb2.UploadHeader) -> None:
        raise PermissionDenied(f"header.grant: not for {header.task_id}")

    with pytest.raises(PermissionDenied, match="not for task_0123abcd"):
        await receive_upload(upload(), max_bytes=10_000, admit=refuse)
    assert sent == []


async def test_what_the_admission_answered_comes_back_with_the_upload() -> None:
    upload, admission = await receive_upload(
        stream(ingest_pb2.UploadArtifactRequest(header=HEADER, chunk=b"ab")), 10, admit_all
    )
    assert (upload.data, admission) == (b"ab", "task_0123abcd")
