"""Late uploads: an upload for a task the scheduler has cancelled stores nothing.

An agent that goes on with a cancelled task (the cancel had not reached it, or it
was cut off) uploads what no result names; storage refuses it before it reserves
quota or writes to S3. The scheduler marks a cancel in the bucket of cancelled
tasks (TaskPublisher.announce_cancel), as the tests here do. Real storage,
SeaweedFS, nats-server and SQL (SQLite and PostgreSQL).
"""

import asyncio
import dataclasses
import json
import secrets
import urllib.request

import grpc
import pytest
from nats.aio.client import Client
from nats.js.kv import KeyValue

from farm_core.shared_buckets import cancel_bucket
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.storage.conftest import Storage

pytestmark = pytest.mark.integration

QUOTA = 100
SEQUENCE = 7
"""The task stream sequence of the task's WorkItem message."""


def new_task() -> str:
    return f"task-{secrets.token_hex(6)}"


@pytest.fixture
async def cancelled_tasks(nc: Client) -> KeyValue:
    """The scheduler's bucket of cancelled tasks."""
    return await cancel_bucket(nc.jetstream())


@pytest.fixture
async def checking(storage: Storage, cancelled_tasks: KeyValue) -> Storage:
    """The storage service once it reads the bucket; its uploads carry a 100-byte quota.

    Storage opens the bucket in the background: an upload for a cancelled task of
    another tenant (whose bytes count against no quota here) is refused once it has.
    """
    probe = new_task()
    await cancelled_tasks.put(probe, b"")

    async def probe_refused() -> bool:
        try:
            await storage.upload(probe, "probe", b"p", tenant=f"{storage.tenant}-probe")
        except grpc.aio.AioRpcError as error:
            return bool(error.code() == grpc.StatusCode.FAILED_PRECONDITION)
        return False

    await assert_eventually(probe_refused, message="storage never read the cancelled tasks")
    return dataclasses.replace(storage, max_artifact_bytes=QUOTA)


async def test_an_upload_for_a_cancelled_task_is_refused_and_stores_nothing(
    checking: Storage, cancelled_tasks: KeyValue
) -> None:
    storage = checking
    task = new_task()
    await cancelled_tasks.put(task, b"")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.upload(task, "shot", b"a" * QUOTA, attempt=1, work_sequence=SEQUENCE)

    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.details() == (
        f"task '{task}' has ended (CANCELLED): no result names what it would store; "
        "nothing was stored"
    )
    assert await storage.list_all(task) == []
    assert storage.object_names(f"{storage.tenant}/{task}/") == []
    # The refused upload holds none of the quota: a running task's upload may fill it.
    running = await storage.upload(new_task(), "shot", b"b" * QUOTA, attempt=1)
    assert running.artifact.size_bytes == QUOTA


async def test_an_upload_for_a_cancelled_task_replaces_nothing_it_stored_before(
    checking: Storage, cancelled_tasks: KeyValue
) -> None:
    storage = checking
    task = new_task()
    before = await storage.upload(task, "shot", b"first", attempt=1, work_sequence=SEQUENCE)
    await cancelled_tasks.put(task, b"")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.upload(task, "shot", b"late", attempt=1, work_sequence=SEQUENCE)

    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    [kept] = await storage.list_all(task)
    assert (kept.id, kept.sha256) == (before.artifact.id, before.artifact.sha256)


async def test_uploads_for_tasks_and_sessions_not_cancelled_are_stored(
    checking: Storage, cancelled_tasks: KeyValue
) -> None:
    storage = checking
    await cancelled_tasks.put(new_task(), b"")
    task, session = new_task(), f"ses_{secrets.token_hex(6)}"

    first = await storage.upload(task, "shot", b"a", attempt=1, work_sequence=SEQUENCE)
    retried = await storage.upload(task, "shot", b"b", attempt=2, work_sequence=SEQUENCE)
    recording = await storage.upload(session, "recording", b"c")

    assert retried.artifact.id == first.artifact.id
    assert [a.task_id for a in await storage.list_all()] == [session, task]
    assert recording.artifact.size_bytes == 1


async def test_an_upload_for_a_task_failed_elsewhere_is_refused_naming_the_reason(
    checking: Storage, cancelled_tasks: KeyValue
) -> None:
    # The scheduler's mark of a task that timed out while this attempt was stuck.
    storage = checking
    task = new_task()
    await cancelled_tasks.put(task, b"FAILED: DEADLINE_EXCEEDED")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await storage.upload(task, "shot", b"late", attempt=1, work_sequence=SEQUENCE)

    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.details() == (
        f"task '{task}' has ended (FAILED: DEADLINE_EXCEEDED): no result names what it "
        "would store; nothing was stored"
    )
    assert await storage.list_all(task) == []


async def test_storage_asks_nats_over_one_connection(
    checking: Storage, nats_server: NatsServer
) -> None:
    # Its check of ended tasks has read the bucket: its connection is made. Deletes ask
    # the scheduler over the same one (tests/integration/storage/test_artifacts.py).
    def storage_connections() -> list[str]:
        with urllib.request.urlopen(f"{nats_server.monitor_url}/connz?limit=1024") as answer:
            connections = json.load(answer)["connections"] or []
        return [c.get("name", "") for c in connections if c.get("name", "").startswith("farm-st")]

    assert await asyncio.to_thread(storage_connections) == ["farm-storage"]
