"""The storage service's promises, over gRPC, against real SeaweedFS and SQL."""

import asyncio
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

import grpc
import pytest
from minio.error import S3Error
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from farm.storage.v1 import artifacts_pb2, ingest_pb2
from farm.tasks.v1 import tasks_pb2
from farm_cli.launcher import infra
from farm_storage.server import StorageService
from tests.conftest import NatsServer, S3Server
from tests.helpers import assert_eventually, serving
from tests.integration.storage.conftest import (
    MAX_ARTIFACT_BYTES,
    RPC_TIMEOUT,
    Evictions,
    Storage,
    serving_storage,
    storage_settings,
    token,
)

pytestmark = pytest.mark.integration


async def test_upload_in_chunks_is_served_back_byte_identical(storage: Storage) -> None:
    data = os.urandom(100_000)
    uploads_before = REGISTRY.get_sample_value(
        "farm_storage_uploads_total", {"kind": "ARTIFACT_KIND_PDF"}
    )

    uploaded = await storage.upload(
        "task-1",
        "page.pdf",
        data,
        chunk_bytes=7_000,
        content_type="application/pdf",
        kind=tasks_pb2.ARTIFACT_KIND_PDF,
    )

    artifact = await storage.get(uploaded.artifact.id)
    assert artifact == uploaded.artifact
    assert artifact.id.startswith("art_")
    assert (artifact.tenant, artifact.task_id, artifact.name) == (
        storage.tenant,
        "task-1",
        "page.pdf",
    )
    assert artifact.kind == tasks_pb2.ARTIFACT_KIND_PDF
    assert artifact.size_bytes == len(data)
    assert artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert artifact.create_time.seconds > 0
    body = await storage.content(artifact.id)
    assert body.content_type == "application/pdf"
    assert body.data == data
    assert storage.object_names(f"{storage.tenant}/") == [f"{storage.tenant}/task-1/page.pdf"]
    uploads_after = REGISTRY.get_sample_value(
        "farm_storage_uploads_total", {"kind": "ARTIFACT_KIND_PDF"}
    )
    assert uploads_after == (uploads_before or 0) + 1


async def test_list_pages_newest_first_and_filters_by_task(storage: Storage) -> None:
    uploaded = [(await storage.upload("task-a", f"shot-{n}", b"x" * n)).artifact for n in range(5)]
    other_task = (await storage.upload("task-b", "shot-0", b"y")).artifact

    pages: list[list[str]] = []
    page_token = ""
    for _ in range(10):
        reply = await storage.list_artifacts(task_id="task-a", page_size=2, page_token=page_token)
        pages.append([artifact.id for artifact in reply.artifacts])
        page_token = reply.next_page_token
        if not page_token:
            break

    newest_first = [artifact.id for artifact in reversed(uploaded)]
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:5]]
    assert [a.id for a in await storage.list_all()] == [other_task.id, *newest_first]
    assert [a.id for a in await storage.list_all("task-b")] == [other_task.id]


async def test_list_refuses_a_token_it_did_not_issue(storage: Storage) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.list_artifacts(page_token="not-a-token")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("pageToken:")


async def test_delete_removes_bytes_and_metadata(storage: Storage, evictions: Evictions) -> None:
    artifact = (await storage.upload("task-1", "screenshot", b"png bytes")).artifact

    await storage.delete(artifact.id, token(storage.tenant, "tasks.write"))

    # The scheduler was told first, to drop the task's cached result.
    assert evictions.heard == [(storage.tenant, "task-1")]
    with pytest.raises(S3Error) as missing:
        await asyncio.to_thread(
            storage.s3.stat_object, storage.bucket, f"{storage.tenant}/task-1/screenshot"
        )
    assert missing.value.code == "NoSuchKey"
    assert await storage.list_all() == []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.get(artifact.id)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_delete_the_scheduler_does_not_confirm_deletes_nothing(
    storage: Storage,
    evictions: Evictions,
    seaweedfs: S3Server,
    farm_home: Path,
    database_url: str,
    nats_server: NatsServer,
) -> None:
    artifact = (await storage.upload("task-1", "screenshot", b"png bytes")).artifact
    evictions.answering = False
    # A replica that waits for the confirmation only briefly: none comes, however long.
    impatient = storage_settings(
        farm_home, database_url, seaweedfs, seaweedfs.bucket, nats_server.url
    ).model_copy(update={"cache_eviction_timeout_seconds": 0.2})

    async with serving_storage(impatient, seaweedfs, storage.tenant) as replica:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await replica.delete(artifact.id, token(storage.tenant, "tasks.write"))

    # A cached result may still name the artifact: it stays, bytes and all.
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "cached result" in (caught.value.details() or "")
    assert [a.id for a in await storage.list_all()] == [artifact.id]
    assert (await storage.content(artifact.id)).data == b"png bytes"
    evictions.answering = True
    await storage.delete(artifact.id, token(storage.tenant, "tasks.write"))
    assert await storage.list_all() == []


async def test_the_stored_gauges_count_artifacts_and_bytes_by_kind(storage: Storage) -> None:
    kind = {"kind": "ARTIFACT_KIND_CONTENT"}

    def stored() -> tuple[float | None, float | None]:
        return (
            REGISTRY.get_sample_value("farm_storage_artifacts", kind),
            REGISTRY.get_sample_value("farm_storage_stored_bytes", kind),
        )

    html: dict[str, Any] = {"content_type": "text/html", "kind": tasks_pb2.ARTIFACT_KIND_CONTENT}
    first = (await storage.upload("task-1", "page.html", b"x" * 1000, **html)).artifact
    await storage.upload("task-2", "page.html", b"y" * 500, **html)
    await assert_eventually(lambda: stored() == (2, 1500), message=lambda: f"showed {stored()}")

    await storage.artifacts.DeleteArtifact(
        artifacts_pb2.DeleteArtifactRequest(id=first.id),
        metadata=token(storage.tenant, "tasks.write"),
        timeout=RPC_TIMEOUT,
    )
    await assert_eventually(lambda: stored() == (1, 500), message=lambda: f"showed {stored()}")


async def test_another_tenant_gets_not_found_and_sees_nothing(storage: Storage) -> None:
    artifact = (await storage.upload("task-1", "screenshot", b"secret")).artifact
    stranger = token("someone-else", "artifacts.read", "tasks.write")

    calls = [
        storage.get(artifact.id, stranger),
        storage.content(artifact.id, stranger),
        storage.delete(artifact.id, stranger),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await storage.list_artifacts(metadata=stranger)
    assert list(listed.artifacts) == []
    assert [a.id for a in await storage.list_all()] == [artifact.id]


async def test_oversized_upload_is_refused_and_leaves_nothing(storage: Storage) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.upload("task-1", "huge", b"z" * (MAX_ARTIFACT_BYTES + 1))

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.details() == f"artifact exceeds {MAX_ARTIFACT_BYTES} bytes"
    assert storage.object_names(f"{storage.tenant}/") == []
    assert await storage.list_all() == []


async def test_oversized_reupload_keeps_the_earlier_artifact(storage: Storage) -> None:
    earlier = (await storage.upload("task-1", "shot", b"first")).artifact

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.upload("task-1", "shot", b"z" * (MAX_ARTIFACT_BYTES + 1))

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await storage.list_all() == [earlier]
    body = await storage.content(earlier.id)
    assert body.data == b"first"


async def set_row_refusal(storage: Storage, *, refused: bool) -> None:
    """Makes the service's database fail (or again accept) every artifact row it writes."""
    engine = create_async_engine(storage.database_url)
    try:
        async with engine.begin() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if not refused:
                await connection.execute(
                    text(
                        "DROP TRIGGER refuse_artifacts"
                        if sqlite
                        else "DROP TRIGGER refuse_artifacts ON artifacts"
                    )
                )
            elif sqlite:
                await connection.execute(
                    text(
                        "CREATE TRIGGER refuse_artifacts BEFORE INSERT ON artifacts "
                        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                    )
                )
            else:
                await connection.execute(
                    text(
                        "CREATE OR REPLACE FUNCTION refuse_artifacts() RETURNS trigger AS $$ "
                        "BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"
                    )
                )
                await connection.execute(
                    text(
                        "CREATE TRIGGER refuse_artifacts BEFORE INSERT ON artifacts "
                        "FOR EACH ROW EXECUTE FUNCTION refuse_artifacts()"
                    )
                )
    finally:
        await engine.dispose()


async def test_failed_row_write_removes_the_new_bytes(storage: Storage) -> None:
    await set_row_refusal(storage, refused=True)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.upload("task-1", "shot", b"bytes without a row")

    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert storage.object_names(f"{storage.tenant}/") == []


async def test_failed_reupload_keeps_the_artifact_readable_and_a_retry_completes_it(
    storage: Storage,
) -> None:
    earlier = (await storage.upload("task-1", "shot", b"first")).artifact
    await set_row_refusal(storage, refused=True)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.upload("task-1", "shot", b"second")

    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert [a.id for a in await storage.list_all()] == [earlier.id]
    body = await storage.content(earlier.id)
    # The key now holds the new bytes; the retried upload brings the metadata along.
    assert body.data == b"second"

    await set_row_refusal(storage, refused=False)
    retried = (await storage.upload("task-1", "shot", b"second")).artifact

    assert retried.id == earlier.id
    assert retried.sha256 == hashlib.sha256(b"second").hexdigest()
    assert [a.id for a in await storage.list_all()] == [earlier.id]


GOOD_HEADER = {
    "tenant": "acme",
    "task_id": "task-1",
    "name": "screenshot",
    "kind": tasks_pb2.ARTIFACT_KIND_SCREENSHOT,
    "content_type": "image/png",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tenant": ""}, "header.tenant"),
        ({"tenant": "a/b"}, "header.tenant"),
        ({"task_id": ""}, "header.taskId"),
        ({"task_id": "../up"}, "header.taskId"),
        ({"name": ""}, "header.name"),
        ({"name": "Screenshot"}, "header.name"),
        ({"name": "a" * 65}, "header.name"),
        ({"name": "-lead"}, "header.name"),
        ({"kind": tasks_pb2.ARTIFACT_KIND_UNSPECIFIED}, "header.kind"),
        ({"kind": 99}, "header.kind"),
        ({"content_type": ""}, "header.contentType"),
    ],
)
async def test_invalid_header_field_is_named(
    storage: Storage, change: dict[str, object], field: str
) -> None:
    header = ingest_pb2.UploadHeader(**{**GOOD_HEADER, **change})  # type: ignore[arg-type]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.send([header], b"data")

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith(f"{field}:")


async def test_upload_without_a_header_first_is_refused(storage: Storage) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.send([], b"data only")

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("header:")


async def test_reupload_replaces_bytes_and_keeps_the_id(storage: Storage) -> None:
    first = (await storage.upload("task-1", "content", b"<p>old</p>")).artifact

    second = (
        await storage.upload(
            "task-1",
            "content",
            b"<p>new and longer</p>",
            content_type="text/html",
            kind=tasks_pb2.ARTIFACT_KIND_CONTENT,
        )
    ).artifact

    assert second.id == first.id
    assert second.sha256 == hashlib.sha256(b"<p>new and longer</p>").hexdigest()
    assert (second.content_type, second.kind) == ("text/html", tasks_pb2.ARTIFACT_KIND_CONTENT)
    assert [a.id for a in await storage.list_all("task-1")] == [first.id]
    body = await storage.content(first.id)
    assert (body.content_type, body.data) == ("text/html", b"<p>new and longer</p>")


async def test_upload_over_another_tenants_artifact_is_refused(storage: Storage) -> None:
    original = (await storage.upload("task-1", "shot", b"mine")).artifact
    intruder = f"{storage.tenant}-intruder"

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.upload("task-1", "shot", b"theirs", tenant=intruder)

    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert storage.object_names(f"{intruder}/") == []
    assert await storage.list_all() == [original]


@pytest.mark.parametrize("scopes", [(), ("artifacts.read", "tasks.write", "admin")])
async def test_upload_without_internal_scope_is_refused(
    storage: Storage, scopes: tuple[str, ...]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.upload("task-1", "shot", b"x", metadata=token(storage.tenant, *scopes))

    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert storage.object_names(f"{storage.tenant}/") == []


async def test_tasks_read_alone_cannot_read_or_delete_artifacts(storage: Storage) -> None:
    artifact = (await storage.upload("task-1", "shot", b"x")).artifact
    tasks_reader = token(storage.tenant, "tasks.read")
    calls = [
        storage.get(artifact.id, tasks_reader),
        storage.content(artifact.id, tasks_reader),
        storage.list_artifacts(metadata=tasks_reader),
        storage.delete(artifact.id, storage.reader()),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert [a.id for a in await storage.list_all()] == [artifact.id]


async def test_start_makes_the_bucket_when_missing(
    seaweedfs: S3Server, farm_home: Path, database_url: str, nats_server: NatsServer
) -> None:
    bucket = f"storage-{secrets.token_hex(4)}"
    # With the farm's NATS: a stop would wait a while for a connect that cannot succeed.
    settings = storage_settings(farm_home, database_url, seaweedfs, bucket, nats_server.url)
    async with serving(StorageService(settings), settings):
        client = infra.s3_client(seaweedfs.endpoint, seaweedfs.credentials)
        assert await asyncio.to_thread(client.bucket_exists, bucket)
