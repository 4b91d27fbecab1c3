"""Zombie uploads: an attempt that a later attempt of its task overtook stores nothing.

An agent cut off from the farm keeps running its attempt while the task is retried
elsewhere; when the retry has succeeded and stored its artifacts, the cut-off
agent's uploads (with the task's still valid grant) must neither replace nor add to
them. Real storage, SeaweedFS and SQL (SQLite and PostgreSQL).
"""

import hashlib
import secrets

import grpc
import pytest

from farm.tasks.v1 import tasks_pb2
from farm_storage.attempts import AttemptFence, StaleAttempt
from farm_storage.store import ArtifactContent, ArtifactStore
from tests.integration.storage.conftest import Storage

pytestmark = pytest.mark.integration

SEQUENCE = 7
"""The task stream sequence of the task's WorkItem message."""


def new_task() -> str:
    return f"task-{secrets.token_hex(6)}"


async def content_of(storage: Storage, artifact_id: str) -> bytes:
    body = await storage.content(artifact_id)
    return bytes(body.data)


async def refusal_of_upload(storage: Storage, task_id: str, name: str, attempt: int) -> str:
    """The details of the FAILED_PRECONDITION that an upload of `attempt` gets."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.upload(
            task_id, name, b"zombie bytes", attempt=attempt, work_sequence=SEQUENCE
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    return caught.value.details() or ""


async def test_a_stale_attempt_cannot_replace_what_the_succeeded_retry_stored(
    storage: Storage,
) -> None:
    task_id = new_task()
    # Attempt 1 stored the screenshot, then its agent was cut off; attempt 2 ran elsewhere.
    await storage.upload(task_id, "shot", b"attempt 1", attempt=1, work_sequence=SEQUENCE)
    retried = await storage.upload(task_id, "shot", b"attempt 2", attempt=2, work_sequence=SEQUENCE)

    details = await refusal_of_upload(storage, task_id, "shot", attempt=1)

    assert details.startswith("header.attempt: attempt 1 ")
    assert "not task" in details and "running attempt" in details
    [artifact] = await storage.list_all(task_id)
    assert artifact == retried.artifact
    assert artifact.sha256 == hashlib.sha256(b"attempt 2").hexdigest()
    assert await content_of(storage, artifact.id) == b"attempt 2"
    # Neither attempt 1's replaced bytes nor the refused upload's are left in S3.
    assert storage.object_names(f"{storage.tenant}/{task_id}/") == [
        f"{storage.tenant}/{task_id}/{SEQUENCE}.2/shot"
    ]


async def test_a_stale_attempt_cannot_add_an_artifact_to_the_retrys(storage: Storage) -> None:
    task_id = new_task()
    await storage.upload(task_id, "shot", b"attempt 2", attempt=2, work_sequence=SEQUENCE)

    details = await refusal_of_upload(storage, task_id, "page.pdf", attempt=1)

    assert details.startswith("header.attempt:")
    assert [artifact.name for artifact in await storage.list_all(task_id)] == ["shot"]
    assert storage.object_names(f"{storage.tenant}/{task_id}/{SEQUENCE}.1/") == []


async def test_the_running_attempt_stores_and_replaces_as_before(storage: Storage) -> None:
    task_id = new_task()
    first = await storage.upload(task_id, "shot", b"try 1", attempt=1, work_sequence=SEQUENCE)
    # The same attempt retrying its upload, then the next attempt, replace it.
    again = await storage.upload(task_id, "shot", b"try 2", attempt=1, work_sequence=SEQUENCE)
    retried = await storage.upload(task_id, "shot", b"try 3", attempt=2, work_sequence=SEQUENCE)

    assert first.artifact.id == again.artifact.id == retried.artifact.id
    assert await content_of(storage, retried.artifact.id) == b"try 3"


async def test_a_task_queued_again_numbers_its_attempts_afresh_after_the_earlier_ones(
    storage: Storage,
) -> None:
    task_id = new_task()
    await storage.upload(task_id, "shot", b"old 3", attempt=3, work_sequence=SEQUENCE)
    # RequeueDeadLetter published a new WorkItem message, later in the stream.
    requeued = await storage.upload(
        task_id, "shot", b"new 1", attempt=1, work_sequence=SEQUENCE + 5
    )

    details = await refusal_of_upload(storage, task_id, "shot", attempt=3)

    assert details.startswith("header.attempt:")
    assert await content_of(storage, requeued.artifact.id) == b"new 1"


async def test_an_upload_that_names_no_attempt_is_stored_as_before(storage: Storage) -> None:
    # A session's artifacts, and an agent older than UploadHeader.attempt (rolling upgrade).
    task_id = new_task()
    await storage.upload(task_id, "shot", b"attempt 2", attempt=2, work_sequence=SEQUENCE)

    unchecked = await storage.upload(task_id, "shot", b"no attempt")

    assert await content_of(storage, unchecked.artifact.id) == b"no attempt"
    assert storage.object_names(f"{storage.tenant}/{task_id}/") == [
        f"{storage.tenant}/{task_id}/shot"
    ]


async def test_the_row_write_refuses_an_attempt_overtaken_after_its_first_check(
    storage: Storage,
) -> None:
    """Attempt 2 stores between attempt 1's check before its bytes and its row's write."""
    task_id = new_task()
    store = ArtifactStore(storage.database_url)
    await store.start()
    try:

        def content(name: str, attempt: int) -> ArtifactContent:
            return ArtifactContent(
                tenant=storage.tenant,
                task_id=task_id,
                name=name,
                kind=tasks_pb2.ArtifactKind.Name(tasks_pb2.ARTIFACT_KIND_SCREENSHOT),
                content_type="image/png",
                size_bytes=1,
                sha256="0" * 64,
                object_key=f"{storage.tenant}/{task_id}/{SEQUENCE}.{attempt}/{name}",
                work_sequence=SEQUENCE,
                attempt=attempt,
            )

        stored = await store.save(content("shot", 2))
        for name in ("shot", "page.pdf"):
            with pytest.raises(StaleAttempt):
                await store.save(content(name, 1))

        assert await store.find(task_id, "shot") == stored
        assert await store.find(task_id, "page.pdf") is None
        assert await store.newest_attempt(task_id) == AttemptFence(SEQUENCE, 2)
    finally:
        await store.close()
