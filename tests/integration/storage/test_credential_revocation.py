"""Revoking an agent's credential through auth: storage refuses its uploads within moments,
another agent's still work, and a storage started afterwards refuses it too."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import jwt
import pytest

from farm.auth.v1 import auth_pb2
from farm_core.identity import IDENTITY_HEADER, TENANT_HEADER, CredentialRole, credential_id
from farm_core.identity_keys import load_private_key
from tests.conftest import NatsServer, S3Server
from tests.helpers import TEST_IDENTITY_KEY, TEST_SIGNER, assert_eventually
from tests.integration.auth.conftest import Auth, auth_settings, new_admin_key, running_auth
from tests.integration.storage.conftest import (
    RPC_TIMEOUT,
    Storage,
    serving_storage,
    storage_settings,
)

pytestmark = pytest.mark.integration

# Revocations reach storage over NATS in milliseconds; this only bounds a broken farm.
REVOKED_WITHIN = 10.0


@pytest.fixture
async def auth_on_nats(farm_home: Path, nats_server: NatsServer) -> AsyncIterator[Auth]:
    """An auth service (SQLite) publishing its revocations on the storage's NATS."""
    settings = auth_settings(farm_home / "auth", "", new_admin_key(), NATS_URL=nats_server.url)
    async with running_auth(settings) as running:
        yield running


async def revoke(auth: Auth, *, credential: str = "", subject: str = "") -> None:
    """RevokeCredential by the bootstrap admin: `credential`'s id, or `subject`."""
    await auth.keys.RevokeCredential(
        auth_pb2.RevokeCredentialRequest(id=credential_id(credential), subject=subject),
        metadata=await auth.as_key(auth.admin_key),
        timeout=RPC_TIMEOUT,
    )


async def upload_code(storage: Storage, credential: str) -> grpc.StatusCode:
    """The status of one upload by the agent carrying `credential`."""
    metadata = ((IDENTITY_HEADER, credential), (TENANT_HEADER, storage.tenant))
    try:
        await storage.upload(f"task-{secrets.token_hex(4)}", "shot.png", b"png", metadata=metadata)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def refused_as_revoked(storage: Storage, credential: str) -> bool:
    """Whether an upload with `credential` is refused as revoked; fails on an upload that works
    once it is (nor any other outcome but a wait for the revocations to load)."""
    code = await upload_code(storage, credential)
    assert code in (
        grpc.StatusCode.OK,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.UNAVAILABLE,
    )
    return bool(code == grpc.StatusCode.UNAUTHENTICATED)


def credential_without_id(name: str) -> str:
    """An agent credential as the farm issued them before credentials had an id."""
    now = int(time.time())
    claims = {
        "iss": "farm-auth",
        "aud": "farm",
        "sub": f"agent:{name}",
        "tenant": "",
        "role": "agent",
        "scopes": ["agent"],
        "iat": now - 60,
        "exp": now + 3600,
    }
    return jwt.encode(claims, load_private_key(TEST_IDENTITY_KEY), algorithm="EdDSA")


async def test_a_revoked_agent_credential_is_refused_while_another_agents_works(
    storage: Storage, auth_on_nats: Auth
) -> None:
    revoked = TEST_SIGNER.credential(CredentialRole.AGENT, "agent-revoked")
    kept = TEST_SIGNER.credential(CredentialRole.AGENT, "agent-kept")
    await assert_eventually(
        lambda: _uploads_work(storage, revoked), message="the agent never uploaded"
    )

    await revoke(auth_on_nats, credential=revoked)

    await assert_eventually(
        lambda: refused_as_revoked(storage, revoked),
        within=REVOKED_WITHIN,
        message="storage still takes the revoked credential",
    )
    assert await upload_code(storage, kept) == grpc.StatusCode.OK
    metadata = ((IDENTITY_HEADER, revoked), (TENANT_HEADER, storage.tenant))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await storage.upload("task-x", "shot.png", b"png", metadata=metadata)
    assert refused.value.details() == "credential revoked"


async def test_a_storage_started_after_a_revocation_refuses_the_credential(
    storage: Storage,
    auth_on_nats: Auth,
    seaweedfs: S3Server,
    farm_home: Path,
    database_url: str,
    nats_server: NatsServer,
) -> None:
    revoked = TEST_SIGNER.credential(CredentialRole.AGENT, "agent-gone")
    await revoke(auth_on_nats, credential=revoked)
    settings = storage_settings(
        farm_home, database_url, seaweedfs, seaweedfs.bucket, nats_server.url
    )

    async with serving_storage(settings, seaweedfs, storage.tenant) as restarted:
        await assert_eventually(
            lambda: refused_as_revoked(restarted, revoked),
            within=REVOKED_WITHIN,
            message="the new storage takes the revoked credential",
        )
        kept = TEST_SIGNER.credential(CredentialRole.AGENT, "agent-still-here")
        assert await upload_code(restarted, kept) == grpc.StatusCode.OK


async def test_revoking_a_subject_refuses_its_credentials_issued_before_ids_existed(
    storage: Storage, auth_on_nats: Auth
) -> None:
    # NATS outlives the test: a name of its own, not revoked by an earlier run.
    name = f"agent-old-{secrets.token_hex(4)}"
    legacy = credential_without_id(name)
    assert await upload_code(storage, legacy) == grpc.StatusCode.OK

    await revoke(auth_on_nats, subject=f"agent:{name}")

    await assert_eventually(
        lambda: refused_as_revoked(storage, legacy),
        within=REVOKED_WITHIN,
        message="storage still takes the revoked subject's credential",
    )
    other = credential_without_id("agent-other")
    assert await upload_code(storage, other) == grpc.StatusCode.OK


async def _uploads_work(storage: Storage, credential: str) -> bool:
    return bool(await upload_code(storage, credential) == grpc.StatusCode.OK)
