"""Uploading artifacts to the storage service: identity, chunks, retries, failures."""

import hashlib
import logging
from collections.abc import Callable

import grpc
import pytest

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import CapturedArtifact
from farm_agent.errors import TaskFailure
from farm_agent.settings import AgentSettings
from farm_agent.work.uploader import (
    CORE_WRITE_FAILED,
    ArtifactOwner,
    RetryPolicy,
    StorageUploader,
)
from farm_core.free_ports import free_port
from farm_core.identity import CredentialRole, IdentitySigner
from farm_core.identity_keys import new_private_key, private_pem
from farm_core.task_errors import ErrorCode
from tests.integration.agent.fakes import FakeStorage

pytestmark = pytest.mark.integration

FAST_RETRY = RetryPolicy(attempts=3, first_delay_seconds=0.05, max_delay_seconds=0.1)
SCREENSHOT = CapturedArtifact(
    "screenshot", tasks_pb2.ARTIFACT_KIND_SCREENSHOT, "image/png", bytes(range(256)) * 2400
)


async def upload_once(
    settings: AgentSettings,
    task_id: str,
    retry: RetryPolicy = FAST_RETRY,
    on_refused: Callable[[], None] | None = None,
    artifact: CapturedArtifact = SCREENSHOT,
) -> tasks_pb2.ArtifactRef:
    """Uploads `artifact` of `task_id` (tenant acme) with an uploader of its own."""
    uploader = StorageUploader(settings, retry, on_refused)
    try:
        return await uploader.upload(ArtifactOwner("acme", task_id, "grant-of-the-task"), artifact)
    finally:
        await uploader.close()


async def test_an_artifact_goes_as_header_and_chunks_with_the_agents_identity(
    fake_storage: FakeStorage, make_settings: Callable[..., AgentSettings]
) -> None:
    settings = make_settings(
        id="agent-7", storage_address=fake_storage.address, upload_chunk_bytes=256 * 1024
    )
    ref = await upload_once(settings, "task-1")

    [stored] = fake_storage.ingest.stored
    assert (stored.identity.tenant, stored.identity.key_id) == ("acme", "agent:agent-7")
    assert stored.identity.scopes == {"agent"}
    assert (stored.header.tenant, stored.header.task_id, stored.header.name) == (
        "acme",
        "task-1",
        "screenshot",
    )
    assert stored.header.kind == tasks_pb2.ARTIFACT_KIND_SCREENSHOT
    assert stored.header.content_type == "image/png"
    # The header came with the first chunk.
    assert [len(chunk) for chunk in stored.chunks] == [262144, 262144, 90112]
    assert b"".join(stored.chunks) == SCREENSHOT.data
    assert ref == tasks_pb2.ArtifactRef(
        id="artifact-1",
        kind=tasks_pb2.ARTIFACT_KIND_SCREENSHOT,
        content_type="image/png",
        size_bytes=len(SCREENSHOT.data),
        sha256=hashlib.sha256(SCREENSHOT.data).hexdigest(),
    )


@pytest.mark.parametrize(
    ("size", "message_chunks"),
    [
        (0, [0]),
        (1000, [1000]),
        (1024, [1024]),
        (2048, [1024, 1024]),
        (2049, [1024, 1024, 1]),
    ],
)
async def test_the_header_carries_the_first_chunk_and_every_byte_goes_once(
    fake_storage: FakeStorage,
    make_settings: Callable[..., AgentSettings],
    size: int,
    message_chunks: list[int],
) -> None:
    # An empty artifact is the header alone; one of a chunk or less, one message.
    settings = make_settings(storage_address=fake_storage.address, upload_chunk_bytes=1024)
    data = (bytes(range(256)) * 9)[:size]
    artifact = CapturedArtifact("page", tasks_pb2.ARTIFACT_KIND_CONTENT, "text/html", data)

    ref = await upload_once(settings, "task-1", artifact=artifact)

    [stored] = fake_storage.ingest.stored
    assert stored.header.task_id == "task-1"
    assert [len(chunk) for chunk in stored.chunks] == message_chunks
    assert b"".join(stored.chunks) == data
    assert ref.size_bytes == size


async def test_unavailable_storage_is_retried_until_it_answers_and_each_retry_says_why(
    fake_storage: FakeStorage,
    make_settings: Callable[..., AgentSettings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_storage.ingest.unavailable_left = 2
    # One message (the header carries all the bytes), so that no chunk is being written
    # when storage refuses the header: that is when grpc.aio may lose storage's status.
    artifact = CapturedArtifact("page", tasks_pb2.ARTIFACT_KIND_CONTENT, "text/html", b"<p>x</p>")
    with caplog.at_level(logging.INFO, logger="farm_agent.work.uploader"):
        ref = await upload_once(
            make_settings(storage_address=fake_storage.address), "task-2", artifact=artifact
        )
    assert ref.id == "artifact-1"
    assert len(fake_storage.ingest.stored) == 1
    # Storage's reason (its database full, S3 down) is what the agent's reader acts on;
    # a retry whose status grpc.aio lost all the same (grpc/grpc#36066) says so instead.
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 2, retries
    said = [m.partition(" for page of task task-2;")[0] for m in retries]
    lost = "storage's answer lost (grpc/grpc#36066)"
    assert set(said) <= {"storage unavailable (storage warming up)", lost}, retries
    assert said != [lost, lost], retries


async def test_storage_down_for_every_retry_fails_with_upload_failed(
    make_settings: Callable[..., AgentSettings],
) -> None:
    address = f"127.0.0.1:{free_port()}"
    refusals: list[str] = []
    with pytest.raises(TaskFailure) as caught:
        await upload_once(
            make_settings(storage_address=address),
            "task-3",
            on_refused=lambda: refusals.append("refused"),
        )
    assert caught.value.code is ErrorCode.UPLOAD_FAILED
    assert "UNAVAILABLE" in caught.value.message
    assert refusals == []  # Storage away is no reason to drain.
    assert address in caught.value.message


async def test_a_refused_identity_fails_at_once_without_retrying(
    fake_storage: FakeStorage, make_settings: Callable[..., AgentSettings]
) -> None:
    settings = make_settings(
        storage_address=fake_storage.address,
        credential=IdentitySigner(private_pem(new_private_key())).credential(
            CredentialRole.AGENT, "agent-test"
        ),
    )
    patient = RetryPolicy(attempts=5, first_delay_seconds=30, max_delay_seconds=30)
    refusals: list[str] = []
    with pytest.raises(TaskFailure) as caught:
        await upload_once(settings, "task-4", patient, lambda: refusals.append("refused"))
    assert caught.value.code is ErrorCode.UPLOAD_FAILED
    assert "UNAUTHENTICATED" in caught.value.message
    assert fake_storage.ingest.stored == []
    # A revoked credential fails every upload: the agent (AgentService) drains on it
    # rather than fail each task it would take.
    assert refusals == ["refused"]


async def test_a_refusal_whose_status_grpcio_lost_is_tried_again_to_hear_it(
    fake_storage: FakeStorage, make_settings: Callable[..., AgentSettings]
) -> None:
    # grpc.aio can report its own INTERNAL for a refusal that ended the call while the
    # agent still wrote chunks (grpc/grpc#36066); the next try hears storage's answer,
    # here a revoked credential, on which the agent drains.
    fake_storage.ingest.refusals = [
        (grpc.StatusCode.INTERNAL, CORE_WRITE_FAILED),
        (grpc.StatusCode.UNAUTHENTICATED, "credential revoked"),
    ]
    refusals: list[str] = []
    with pytest.raises(TaskFailure) as caught:
        await upload_once(
            make_settings(storage_address=fake_storage.address),
            "task-5",
            on_refused=lambda: refusals.append("refused"),
        )
    assert "UNAUTHENTICATED: credential revoked" in caught.value.message
    assert refusals == ["refused"]
    assert fake_storage.ingest.refusals == []


async def test_an_internal_error_storage_sends_is_final(
    fake_storage: FakeStorage, make_settings: Callable[..., AgentSettings]
) -> None:
    # A stale attempt's upload, say: trying it again cannot store it.
    fake_storage.ingest.refusals = [(grpc.StatusCode.INTERNAL, "not the running attempt")]
    with pytest.raises(TaskFailure) as caught:
        await upload_once(make_settings(storage_address=fake_storage.address), "task-6")
    assert caught.value.code is ErrorCode.UPLOAD_FAILED
    assert caught.value.message.endswith("failed: INTERNAL: not the running attempt")
    assert fake_storage.ingest.stored == []
