"""The S3 side's start-up: it waits for S3 only as long as it is told to."""

import logging
from pathlib import Path

import pytest

from farm_core.errors import Unavailable
from farm_core.free_ports import free_port
from farm_storage.attempts import AttemptFence
from farm_storage.blobs import BlobStore, object_key
from farm_storage.settings import StorageSettings
from tests.helpers import ends_without_hanging

HANG_GUARD_SECONDS = 30.0


def test_object_key_is_tenant_task_name() -> None:
    assert object_key("acme", "task_1", "screenshot") == "acme/task_1/screenshot"


def test_an_attempts_artifact_has_a_key_of_its_own() -> None:
    fence = AttemptFence(work_sequence=7, attempt=2)
    assert object_key("acme", "task_1", "screenshot", fence) == "acme/task_1/7.2/screenshot"


async def test_start_gives_up_when_s3_never_answers(tmp_path: Path) -> None:
    settings = StorageSettings(
        FARM_HOME=tmp_path,
        FARM_STORAGE_S3_ENDPOINT=f"http://127.0.0.1:{free_port()}",
        s3_ready_timeout_seconds=1.0,
    )
    blobs = BlobStore(settings)
    try:
        with pytest.raises(Unavailable, match="did not make bucket 'farm-artifacts' within 1 s"):
            # Told 1 s, it gives up; the guard only tells a start that never would.
            await ends_without_hanging(blobs.start(), guard=HANG_GUARD_SECONDS, what="start()")
    finally:
        await blobs.close()


async def test_waiting_for_s3_is_logged_once_a_try_not_as_urllib3_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = StorageSettings(
        FARM_HOME=tmp_path,
        FARM_STORAGE_S3_ENDPOINT=f"http://127.0.0.1:{free_port()}",
        s3_ready_timeout_seconds=1.0,
    )
    blobs = BlobStore(settings)
    caplog.set_level(logging.INFO)
    try:
        with pytest.raises(Unavailable):
            await blobs.start()
    finally:
        await blobs.close()
    assert any("waiting for S3" in record.message for record in caplog.records)
    # Only the S3 client's and storage's own records: an earlier test's background task on
    # this worker's loop may still log its own shutdown here.
    warnings = [
        record.message
        for record in caplog.records
        if record.levelno >= logging.WARNING and record.name.startswith(("farm_storage", "urllib3"))
    ]
    assert warnings == []
