"""Baselines and profiles in the storage service: per tenant, over gRPC, on real S3 and SQL."""

import hashlib
import json
import secrets

import grpc
import pytest

from farm.storage.v1 import artifacts_pb2, baselines_pb2, ingest_pb2, profiles_pb2
from tests.integration.storage.conftest import RPC_TIMEOUT, Metadata, Storage, token
from tests.integration.storage.saved_calls import (
    KEY,
    PNG_A,
    PNG_B,
    agent,
    baseline_image,
    create_baseline,
    granted,
)

pytestmark = pytest.mark.integration

STATE = json.dumps(
    {
        "cookies": [{"name": "sid", "value": "s3cret", "domain": "shop.example", "path": "/"}],
        "origins": [
            {"origin": "https://shop.example", "localStorage": [{"name": "u", "value": "ann"}]}
        ],
    }
).encode()


def user(tenant: str) -> Metadata:
    """An API key of `tenant` that reads and writes."""
    return token(tenant, "artifacts.read", "tasks.write")


def other_tenant() -> str:
    return f"other-{secrets.token_hex(4)}"


async def screenshot(storage: Storage, data: bytes, content_type: str = "image/png") -> str:
    """Uploads a screenshot artifact of the storage's tenant; its id."""
    uploaded = await storage.upload(
        f"task-{secrets.token_hex(4)}",
        "screenshot",
        data,
        content_type=content_type,
        metadata=agent(storage.tenant),
    )
    return uploaded.artifact.id


async def test_the_first_screenshot_of_a_key_becomes_its_baseline_and_later_ones_do_not(
    storage: Storage,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await baseline_image(storage)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    first = await create_baseline(storage, await screenshot(storage, PNG_A))
    second = await create_baseline(storage, await screenshot(storage, PNG_B))

    assert first.created and not second.created
    assert second.baseline == first.baseline
    assert first.baseline.id.startswith("bsl_")
    assert (first.baseline.name, first.baseline.url) == ("home", "https://shop.example/")
    assert first.baseline.sha256 == hashlib.sha256(PNG_A).hexdigest()
    read = await baseline_image(storage)
    assert read.image == PNG_A
    assert read.baseline == first.baseline


async def test_another_viewport_or_url_is_another_key(storage: Storage) -> None:
    artifact_id = await screenshot(storage, PNG_A)
    made = await create_baseline(storage, artifact_id)
    other = ingest_pb2.BaselineKey()
    other.CopyFrom(KEY)
    other.viewport.width = 390

    wider = await storage.ingest.CreateBaseline(
        ingest_pb2.CreateBaselineRequest(
            key=other, artifact_id=artifact_id, grant=granted(storage.tenant)
        ),
        metadata=agent(storage.tenant),
        timeout=RPC_TIMEOUT,
    )

    assert wider.created
    assert wider.baseline.id != made.baseline.id


async def test_approve_replaces_the_image_and_the_baseline_survives_its_artifact(
    storage: Storage,
) -> None:
    made = await create_baseline(storage, await screenshot(storage, PNG_A))
    newer = await screenshot(storage, PNG_B)

    approved = await storage.baselines.ApproveBaseline(
        baselines_pb2.ApproveBaselineRequest(id=made.baseline.id, artifact_id=newer),
        metadata=user(storage.tenant),
        timeout=RPC_TIMEOUT,
    )
    await storage.artifacts.DeleteArtifact(
        artifacts_pb2.DeleteArtifactRequest(id=newer),
        metadata=user(storage.tenant),
        timeout=RPC_TIMEOUT,
    )

    assert approved.id == made.baseline.id
    assert approved.artifact_id == newer
    assert approved.sha256 == hashlib.sha256(PNG_B).hexdigest()
    assert (await baseline_image(storage)).image == PNG_B
    # The old image is gone from S3: one object per baseline.
    assert len(storage.object_names(f"{storage.tenant}/_baselines/")) == 1


async def test_only_a_png_screenshot_can_become_a_baseline(storage: Storage) -> None:
    made = await create_baseline(storage, await screenshot(storage, PNG_A))
    jpeg = await screenshot(storage, b"\xff\xd8jpeg", content_type="image/jpeg")

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await storage.baselines.ApproveBaseline(
            baselines_pb2.ApproveBaselineRequest(id=made.baseline.id, artifact_id=jpeg),
            metadata=user(storage.tenant),
            timeout=RPC_TIMEOUT,
        )

    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "artifactId" in (refused.value.details() or "")
    assert (await baseline_image(storage)).image == PNG_A


async def test_list_and_delete_a_baseline_then_the_next_screenshot_starts_anew(
    storage: Storage,
) -> None:
    made = await create_baseline(storage, await screenshot(storage, PNG_A))
    listed = await storage.baselines.ListBaselines(
        baselines_pb2.ListBaselinesRequest(name="home"),
        metadata=user(storage.tenant),
        timeout=RPC_TIMEOUT,
    )
    assert [baseline.id for baseline in listed.baselines] == [made.baseline.id]
    assert listed.baselines[0].viewport == KEY.viewport

    await storage.baselines.DeleteBaseline(
        baselines_pb2.DeleteBaselineRequest(id=made.baseline.id),
        metadata=user(storage.tenant),
        timeout=RPC_TIMEOUT,
    )

    assert storage.object_names(f"{storage.tenant}/_baselines/") == []
    remade = await create_baseline(storage, await screenshot(storage, PNG_B))
    assert remade.created
    assert (await baseline_image(storage)).image == PNG_B


async def test_another_tenant_never_sees_nor_uses_a_baseline(storage: Storage) -> None:
    artifact_id = await screenshot(storage, PNG_A)
    made = await create_baseline(storage, artifact_id)
    stranger = other_tenant()

    listed = await storage.baselines.ListBaselines(
        baselines_pb2.ListBaselinesRequest(), metadata=user(stranger), timeout=RPC_TIMEOUT
    )
    assert list(listed.baselines) == []
    calls = [
        baseline_image(storage, tenant=stranger),
        # Its own baseline of the same key cannot be made from our artifact either.
        create_baseline(storage, artifact_id, tenant=stranger),
        storage.baselines.ApproveBaseline(
            baselines_pb2.ApproveBaselineRequest(id=made.baseline.id, artifact_id=artifact_id),
            metadata=user(stranger),
            timeout=RPC_TIMEOUT,
        ),
        storage.baselines.DeleteBaseline(
            baselines_pb2.DeleteBaselineRequest(id=made.baseline.id),
            metadata=user(stranger),
            timeout=RPC_TIMEOUT,
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await baseline_image(storage)).image == PNG_A


async def save_profile(
    storage: Storage, name: str, state: bytes, tenant: str = ""
) -> ingest_pb2.SaveProfileResponse:
    response: ingest_pb2.SaveProfileResponse = await storage.ingest.SaveProfile(
        ingest_pb2.SaveProfileRequest(
            name=name, state=state, grant=granted(tenant or storage.tenant)
        ),
        metadata=agent(tenant or storage.tenant),
        timeout=RPC_TIMEOUT,
    )
    return response


async def profile_state(
    storage: Storage, name: str, tenant: str = ""
) -> ingest_pb2.GetProfileStateResponse:
    response: ingest_pb2.GetProfileStateResponse = await storage.ingest.GetProfileState(
        ingest_pb2.GetProfileStateRequest(name=name, grant=granted(tenant or storage.tenant)),
        metadata=agent(tenant or storage.tenant),
        timeout=RPC_TIMEOUT,
    )
    return response


async def test_a_saved_profile_is_read_back_listed_and_replaced_by_the_next_save(
    storage: Storage,
) -> None:
    saved = await save_profile(storage, "checkout-user", STATE)
    assert (await profile_state(storage, "checkout-user")).state == STATE
    assert saved.profile.cookies == 1
    assert list(saved.profile.origins) == ["https://shop.example"]
    assert saved.profile.size_bytes == len(STATE)

    emptier = json.dumps({"cookies": [], "origins": []}).encode()
    resaved = await save_profile(storage, "checkout-user", emptier)

    assert (await profile_state(storage, "checkout-user")).state == emptier
    assert resaved.profile.create_time == saved.profile.create_time
    listed = await storage.profiles.ListProfiles(
        profiles_pb2.ListProfilesRequest(), metadata=user(storage.tenant), timeout=RPC_TIMEOUT
    )
    assert [(p.name, p.cookies) for p in listed.profiles] == [("checkout-user", 0)]
    assert len(storage.object_names(f"{storage.tenant}/_profiles/")) == 1


async def test_a_deleted_profile_is_not_found_and_its_state_is_gone(storage: Storage) -> None:
    await save_profile(storage, "p1", STATE)

    await storage.profiles.DeleteProfile(
        profiles_pb2.DeleteProfileRequest(name="p1"),
        metadata=user(storage.tenant),
        timeout=RPC_TIMEOUT,
    )

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await profile_state(storage, "p1")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert storage.object_names(f"{storage.tenant}/_profiles/") == []


async def test_another_tenant_cannot_load_list_or_delete_a_profile(storage: Storage) -> None:
    await save_profile(storage, "signed-in", STATE)
    stranger = other_tenant()

    for call in (
        profile_state(storage, "signed-in", tenant=stranger),
        storage.profiles.DeleteProfile(
            profiles_pb2.DeleteProfileRequest(name="signed-in"),
            metadata=user(stranger),
            timeout=RPC_TIMEOUT,
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await storage.profiles.ListProfiles(
        profiles_pb2.ListProfilesRequest(), metadata=user(stranger), timeout=RPC_TIMEOUT
    )
    assert list(listed.profiles) == []
    # The same name is the stranger's own profile, apart from ours.
    await save_profile(storage, "signed-in", b'{"cookies": [], "origins": []}', tenant=stranger)
    assert (await profile_state(storage, "signed-in")).state == STATE


@pytest.mark.parametrize(
    ("name", "state", "code"),
    [
        (
            "big",
            b'{"cookies": [], "origins": [], "x": "' + b"y" * 1024 * 1024 + b'"}',
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ),
        ("not-json", b"cookies=1", grpc.StatusCode.INVALID_ARGUMENT),
        ("../escape", STATE, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_a_profile_too_large_not_json_or_badly_named_is_refused_and_not_saved(
    storage: Storage, name: str, state: bytes, code: grpc.StatusCode
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await save_profile(storage, name, state)

    assert refused.value.code() == code
    assert storage.object_names(f"{storage.tenant}/_profiles/") == []


async def test_users_cannot_call_the_agents_internal_calls(storage: Storage) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await storage.ingest.GetProfileState(
            ingest_pb2.GetProfileStateRequest(name="signed-in", grant=granted(storage.tenant)),
            metadata=user(storage.tenant),
            timeout=RPC_TIMEOUT,
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
