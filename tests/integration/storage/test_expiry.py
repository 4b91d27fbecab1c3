"""Storage deletes the artifacts of tasks past the scheduler's retention, as asked over NATS."""

import io
import json
import secrets

import grpc
import pytest
from nats.aio.client import Client

from farm_core.artifact_expiry import (
    ARTIFACTS_EXPIRE_SUBJECT,
    ArtifactOwner,
    decode_answer,
    encode_expiry,
)
from tests.helpers import assert_eventually
from tests.integration.storage.conftest import Storage
from tests.integration.storage.saved_calls import (
    PNG_A,
    agent,
    baseline_image,
    create_baseline,
)

pytestmark = pytest.mark.integration


def new_task_id() -> str:
    return secrets.token_hex(16)


async def expire(nc: Client, *owners: ArtifactOwner) -> int:
    """Asks storage to delete the owners' artifacts, as the scheduler's sweep does; how many."""

    async def ask() -> int:
        reply = await nc.request(ARTIFACTS_EXPIRE_SUBJECT, encode_expiry(owners), timeout=5)
        return decode_answer(reply.data)

    # Storage subscribes once its NATS connection is made, just after it starts serving.
    answers: list[int] = []

    async def answered() -> bool:
        try:
            answers.append(await ask())
        except Exception:
            return False
        return True

    await assert_eventually(answered, message="storage never answered an artifact expiry")
    return answers[-1]


async def store(storage: Storage, task_id: str, name: str, data: bytes = PNG_A) -> str:
    uploaded = await storage.upload(task_id, name, data, metadata=agent(storage.tenant))
    return uploaded.artifact.id


async def test_an_expired_tasks_artifacts_go_rows_and_objects_and_no_other(
    storage: Storage, nc: Client
) -> None:
    expired, kept = new_task_id(), new_task_id()
    gone = [await store(storage, expired, "screenshot"), await store(storage, expired, "pdf")]
    kept_id = await store(storage, kept, "screenshot")
    # A baseline copied from an expired task's screenshot is the tenant's own: it stays.
    await create_baseline(storage, gone[0])

    assert await expire(nc, ArtifactOwner(storage.tenant, expired)) == 2

    for artifact_id in gone:
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await storage.get(artifact_id)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert [a.id for a in await storage.list_all()] == [kept_id]
    assert storage.object_names(f"{storage.tenant}/{expired}/") == []
    assert storage.object_names(f"{storage.tenant}/{kept}/") != []
    assert (await baseline_image(storage)).image == PNG_A


async def test_objects_left_behind_are_collected_when_asked_again(
    storage: Storage, nc: Client
) -> None:
    task_id = new_task_id()
    await store(storage, task_id, "screenshot")
    assert await expire(nc, ArtifactOwner(storage.tenant, task_id)) == 1
    # As if S3 had failed after the rows went: an object no row names.
    leftover = f"{storage.tenant}/{task_id}/1.1/screenshot"
    storage.s3.put_object(storage.bucket, leftover, io.BytesIO(PNG_A), len(PNG_A))

    assert await expire(nc, ArtifactOwner(storage.tenant, task_id)) == 0

    assert storage.object_names(f"{storage.tenant}/{task_id}/") == []


async def test_another_tenants_artifacts_and_saved_things_are_never_expired(
    storage: Storage, nc: Client
) -> None:
    task_id = new_task_id()
    artifact_id = await store(storage, task_id, "screenshot")
    await create_baseline(storage, artifact_id)

    assert await expire(nc, ArtifactOwner(f"other-{secrets.token_hex(4)}", task_id)) == 0
    # Baselines and profiles live under `<tenant>/_...`: no owner may name them.
    refused = json.dumps({"owners": [[storage.tenant, "_baselines"]]}).encode()
    reply = await nc.request(ARTIFACTS_EXPIRE_SUBJECT, refused, timeout=5)
    with pytest.raises(ValueError, match="malformed"):
        decode_answer(reply.data)

    assert [a.id for a in await storage.list_all()] == [artifact_id]
    assert (await baseline_image(storage)).image == PNG_A
