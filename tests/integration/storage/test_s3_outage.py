"""Storage's log and metrics tell an operator when S3 fails and when it answers again.

A real SeaweedFS behind a TCP link the test cuts and mends, as a network or a
stalled S3 gateway fails.
"""

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from farm_core.errors import Unavailable
from farm_storage.blobs import BlobStore
from farm_storage.settings import StorageSettings
from tests.conftest import S3Server
from tests.tcp_link import CuttableLink

pytestmark = pytest.mark.integration

OUTAGE_LOG = "farm_storage.s3_outage"


@pytest.fixture
async def link(seaweedfs: S3Server) -> AsyncIterator[CuttableLink]:
    """A mended link to the session's SeaweedFS S3 gateway; cut for good afterwards."""
    link = CuttableLink(int(seaweedfs.endpoint.rsplit(":", 1)[1]))
    await link.mend()
    try:
        yield link
    finally:
        await link.cut()


@pytest.fixture
async def blobs(
    link: CuttableLink, seaweedfs: S3Server, tmp_path: Path
) -> AsyncIterator[BlobStore]:
    """A started BlobStore on the session's bucket through `link`."""
    settings = StorageSettings(
        FARM_HOME=tmp_path,
        FARM_STORAGE_S3_ENDPOINT=f"http://127.0.0.1:{link.port}",
        FARM_STORAGE_S3_ACCESS_KEY=seaweedfs.credentials.access_key,
        FARM_STORAGE_S3_SECRET_KEY=seaweedfs.credentials.secret_key,
        FARM_STORAGE_S3_BUCKET=seaweedfs.bucket,
        s3_ready_timeout_seconds=30,
        s3_timeout_seconds=5,
    )
    store = BlobStore(settings)
    try:
        await store.start()
        yield store
    finally:
        await store.close()


def failed_puts() -> float:
    """farm_storage_s3_failures_total of PutObject so far (this process's)."""
    value = REGISTRY.get_sample_value("farm_storage_s3_failures_total", {"operation": "PutObject"})
    return value or 0


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    """The S3 outage lines logged so far, cleared."""
    found = [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if record.name == OUTAGE_LOG
    ]
    caplog.clear()
    return found


async def test_s3_failing_is_logged_once_with_operation_bucket_and_error_then_its_end(
    blobs: BlobStore, link: CuttableLink, seaweedfs: S3Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=OUTAGE_LOG)
    await blobs.put("outage/before", b"one", "text/plain")
    assert outage_lines(caplog) == []

    await link.cut()
    failed_before = failed_puts()
    for _ in range(3):
        with pytest.raises(Unavailable):
            await blobs.put("outage/during", b"two", "text/plain")

    [(level, message)] = outage_lines(caplog)
    assert level == logging.WARNING
    failed = f"S3 failed PutObject on bucket {seaweedfs.bucket!r}: "
    assert message.startswith(failed)
    assert message.removeprefix(failed).strip()  # The error, as urllib3 or minio told it.

    await link.mend()
    assert await blobs.get("outage/before") == b"one"
    [(level, message)] = outage_lines(caplog)
    assert level == logging.INFO
    assert message.startswith(f"S3 answers again on bucket {seaweedfs.bucket!r} after failing for")
    assert failed_puts() - failed_before == 3
