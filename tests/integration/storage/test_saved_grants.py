"""Agents' baseline and profile calls need the scheduler's grant: its tenant is the call's."""

import json
import secrets
from collections.abc import Callable

import grpc
import pytest

from farm.storage.v1 import baselines_pb2, ingest_pb2, profiles_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.grants import GrantSigner, UploadGrant
from farm_core.identity import IDENTITY_HEADER
from farm_core.identity_keys import new_private_key
from tests.helpers import TEST_GRANTS, agent_credential, grant_for
from tests.integration.storage.conftest import RPC_TIMEOUT, Metadata, Storage, agent_token, token

pytestmark = pytest.mark.integration

TASK = "task-held"
KEY = ingest_pb2.BaselineKey(
    name="home", url="https://shop.example/", viewport=tasks_pb2.Viewport(width=1280, height=800)
)
OTHER_KEY = ingest_pb2.BaselineKey(
    name="cart",
    url="https://shop.example/cart",
    viewport=tasks_pb2.Viewport(width=1280, height=800),
)
PNG = b"\x89PNG\r\n\x1a\n" + b"a" * 100
STATE = json.dumps(
    {"cookies": [{"name": "sid", "value": "s3cret", "domain": "shop.example", "path": "/"}]}
).encode()
THIEFS_STATE = b'{"cookies": [], "origins": []}'

# Each takes the storage's tenant and a stranger tenant; the grant a call shows.
BAD_GRANTS: dict[str, Callable[[str, str], str]] = {
    "none": lambda tenant, stranger: "",
    "another tenant's": lambda tenant, stranger: grant_for(TASK, stranger),
    "signed with another key": lambda tenant, stranger: GrantSigner(new_private_key()).sign(
        UploadGrant(TASK, tenant), 600
    ),
    "expired": lambda tenant, stranger: TEST_GRANTS.sign(UploadGrant(TASK, tenant), -60),
}


def held(tenant: str) -> str:
    """The grant of a task of `tenant` that loads and saves "signed-in" and compares "home"."""
    return grant_for(TASK, tenant, profiles=("signed-in",), baselines=("home",))


def credential_only() -> Metadata:
    """An agent's credential naming no tenant: the grant's tenant is the call's."""
    return ((IDENTITY_HEADER, agent_credential()),)


def reader(tenant: str) -> Metadata:
    """A key of `tenant` that lists its baselines and profiles."""
    return token(tenant, "artifacts.read")


async def refusal(call: object) -> grpc.aio.AioRpcError:
    """The error a call (an awaitable) ended with."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call  # type: ignore[misc]
    return refused.value


async def save(storage: Storage, tenant: str, state: bytes) -> None:
    """Saves profile "signed-in" of `tenant` with a valid grant of a task of it."""
    await storage.ingest.SaveProfile(
        ingest_pb2.SaveProfileRequest(name="signed-in", state=state, grant=held(tenant)),
        metadata=agent_token(tenant),
        timeout=RPC_TIMEOUT,
    )


async def saved_state(storage: Storage, tenant: str) -> bytes:
    """The state of profile "signed-in" of `tenant`, read with a valid grant."""
    reply = await storage.ingest.GetProfileState(
        ingest_pb2.GetProfileStateRequest(name="signed-in", grant=held(tenant)),
        metadata=agent_token(tenant),
        timeout=RPC_TIMEOUT,
    )
    return bytes(reply.state)


@pytest.mark.parametrize("why", list(BAD_GRANTS))
async def test_profile_calls_without_a_valid_grant_of_the_tenant_read_and_write_nothing(
    storage: Storage, why: str
) -> None:
    stranger = f"other-{secrets.token_hex(4)}"
    await save(storage, storage.tenant, STATE)
    grant = BAD_GRANTS[why](storage.tenant, stranger)

    read = await refusal(
        storage.ingest.GetProfileState(
            ingest_pb2.GetProfileStateRequest(name="signed-in", grant=grant),
            metadata=agent_token(storage.tenant),
            timeout=RPC_TIMEOUT,
        )
    )
    write = await refusal(
        storage.ingest.SaveProfile(
            ingest_pb2.SaveProfileRequest(name="signed-in", state=THIEFS_STATE, grant=grant),
            metadata=agent_token(storage.tenant),
            timeout=RPC_TIMEOUT,
        )
    )

    for refused in (read, write):
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
        assert (refused.details() or "").startswith("grant:")
    assert await saved_state(storage, storage.tenant) == STATE
    for tenant in (storage.tenant, stranger):
        listed = await storage.profiles.ListProfiles(
            profiles_pb2.ListProfilesRequest(), metadata=reader(tenant), timeout=RPC_TIMEOUT
        )
        assert [profile.cookies for profile in listed.profiles] == (
            [1] if tenant == storage.tenant else []
        )


@pytest.mark.parametrize("why", list(BAD_GRANTS))
async def test_baseline_calls_without_a_valid_grant_of_the_tenant_read_and_make_nothing(
    storage: Storage, why: str
) -> None:
    stranger = f"other-{secrets.token_hex(4)}"
    uploaded = await storage.upload(TASK, "screenshot", PNG)
    valid = held(storage.tenant)
    await storage.ingest.CreateBaseline(
        ingest_pb2.CreateBaselineRequest(key=KEY, artifact_id=uploaded.artifact.id, grant=valid),
        metadata=agent_token(storage.tenant),
        timeout=RPC_TIMEOUT,
    )
    grant = BAD_GRANTS[why](storage.tenant, stranger)

    read = await refusal(
        storage.ingest.GetBaselineImage(
            ingest_pb2.GetBaselineImageRequest(key=KEY, grant=grant),
            metadata=agent_token(storage.tenant),
            timeout=RPC_TIMEOUT,
        )
    )
    made = await refusal(
        storage.ingest.CreateBaseline(
            ingest_pb2.CreateBaselineRequest(
                key=OTHER_KEY, artifact_id=uploaded.artifact.id, grant=grant
            ),
            metadata=agent_token(storage.tenant),
            timeout=RPC_TIMEOUT,
        )
    )

    for refused in (read, made):
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
        assert (refused.details() or "").startswith("grant:")
    for tenant in (storage.tenant, stranger):
        listed = await storage.baselines.ListBaselines(
            baselines_pb2.ListBaselinesRequest(), metadata=reader(tenant), timeout=RPC_TIMEOUT
        )
        assert [baseline.name for baseline in listed.baselines] == (
            ["home"] if tenant == storage.tenant else []
        )


async def test_a_call_naming_no_tenant_acts_for_the_tenant_of_its_grant(storage: Storage) -> None:
    stranger = f"other-{secrets.token_hex(4)}"
    session_grant = grant_for("ses_held", storage.tenant, profiles=("signed-in",))

    saved = await storage.ingest.SaveProfile(
        ingest_pb2.SaveProfileRequest(name="signed-in", state=STATE, grant=session_grant),
        metadata=credential_only(),
        timeout=RPC_TIMEOUT,
    )
    strangers = await refusal(
        storage.ingest.GetProfileState(
            ingest_pb2.GetProfileStateRequest(
                name="signed-in", grant=grant_for("ses_held", stranger, profiles=("signed-in",))
            ),
            metadata=credential_only(),
            timeout=RPC_TIMEOUT,
        )
    )

    assert saved.profile.tenant == storage.tenant
    assert await saved_state(storage, storage.tenant) == STATE
    # The stranger's grant reaches only the stranger's profiles, which hold none.
    assert strangers.code() == grpc.StatusCode.NOT_FOUND
