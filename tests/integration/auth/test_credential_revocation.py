"""RevokeCredential: the MCP service's revoked credential renews no token, also after auth
restarts (its SQL is the source of truth); only the bootstrap tenant's admin may revoke;
a revocation NATS did not take is still in force on the replica that stored it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import grpc
import pytest

from farm.auth.v1 import auth_pb2, renewal_pb2, renewal_pb2_grpc
from farm_auth import credential_revocations
from farm_core.identity import IDENTITY_HEADER, CredentialRole, credential_id
from tests.conftest import NatsServer
from tests.helpers import TEST_SIGNER
from tests.integration.auth.conftest import (
    RPC_TIMEOUT,
    Auth,
    auth_settings,
    new_admin_key,
    running_auth,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def admin_key() -> str:
    """The bootstrap admin key of the auth services of one test."""
    return new_admin_key()


@pytest.fixture
async def auth_on_nats(
    farm_home: Path, database_url: str, nats_server: NatsServer, admin_key: str
) -> AsyncIterator[Auth]:
    """An auth service publishing its revocations on NATS."""
    settings = auth_settings(farm_home, database_url, admin_key, NATS_URL=nats_server.url)
    async with running_auth(settings) as running:
        yield running


async def renewal_code(auth: Auth, credential: str) -> grpc.StatusCode:
    """The status of RenewIdentity called with the MCP service's `credential`."""
    created = await auth.create_key(auth.admin_key, scopes=("sessions",))
    token = await auth.identity_token(created.secret)
    async with grpc.aio.insecure_channel(auth.address) as channel:
        renewal = cast(
            "renewal_pb2_grpc.IdentityRenewalServiceAsyncStub",
            renewal_pb2_grpc.IdentityRenewalServiceStub(channel),
        )
        try:
            await renewal.RenewIdentity(
                renewal_pb2.RenewIdentityRequest(token=token),
                metadata=((IDENTITY_HEADER, credential),),
                timeout=RPC_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            assert error.code() != grpc.StatusCode.UNAUTHENTICATED or (
                error.details() == "credential revoked"
            ), error.details()
            return error.code()
    return grpc.StatusCode.OK


async def revoke(
    auth: Auth, caller_secret: str, request: auth_pb2.RevokeCredentialRequest
) -> auth_pb2.RevokedCredential:
    """RevokeCredential called with `caller_secret`."""
    reply: auth_pb2.RevokedCredential = await auth.keys.RevokeCredential(
        request, metadata=await auth.as_key(caller_secret), timeout=RPC_TIMEOUT
    )
    return reply


async def test_a_revoked_mcp_credential_renews_nothing_even_after_auth_restarts(
    auth_on_nats: Auth, farm_home: Path, database_url: str, admin_key: str
) -> None:
    revoked = TEST_SIGNER.credential(CredentialRole.MCP, "mcp")
    kept = TEST_SIGNER.credential(CredentialRole.MCP, "mcp")
    assert await renewal_code(auth_on_nats, revoked) == grpc.StatusCode.OK

    reply = await revoke(
        auth_on_nats, admin_key, auth_pb2.RevokeCredentialRequest(id=credential_id(revoked))
    )

    assert reply.id == credential_id(revoked) and reply.expire_time.seconds > 0
    assert await renewal_code(auth_on_nats, revoked) == grpc.StatusCode.UNAUTHENTICATED
    assert await renewal_code(auth_on_nats, kept) == grpc.StatusCode.OK
    # Without NATS, an auth started afterwards knows it from its SQL alone.
    offline = auth_settings(farm_home, database_url, admin_key, NATS_URL="nats://127.0.0.1:1")
    async with running_auth(offline) as restarted:
        assert await renewal_code(restarted, revoked) == grpc.StatusCode.UNAUTHENTICATED
        assert await renewal_code(restarted, kept) == grpc.StatusCode.OK


async def test_only_the_bootstrap_admin_may_revoke_and_the_request_names_one_thing(
    auth_on_nats: Auth, admin_key: str
) -> None:
    tenant_admin = await auth_on_nats.create_key(admin_key, scopes=("admin",), tenant="acme")
    credential = TEST_SIGNER.credential(CredentialRole.AGENT, "agent-1")
    request = auth_pb2.RevokeCredentialRequest(id=credential_id(credential))

    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await revoke(auth_on_nats, tenant_admin.secret, request)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

    for invalid, field in [
        (auth_pb2.RevokeCredentialRequest(), "id"),
        (auth_pb2.RevokeCredentialRequest(id="cred_1", subject="agent:a"), "id"),
        (auth_pb2.RevokeCredentialRequest(id="not-an-id"), "id"),
        (auth_pb2.RevokeCredentialRequest(subject="robot:a"), "subject"),
        (auth_pb2.RevokeCredentialRequest(subject="agent:"), "subject"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await revoke(auth_on_nats, admin_key, invalid)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (refused.value.details() or "").startswith(f"{field}:")


async def test_a_revocation_nats_did_not_take_is_in_force_on_this_replica_at_once(
    farm_home: Path, database_url: str, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No NATS: nothing comes back through the bucket's watch, only the replica's own record.
    monkeypatch.setattr(credential_revocations, "PUBLISH_TIMEOUT_SECONDS", 0.2)
    revoked = TEST_SIGNER.credential(CredentialRole.MCP, "mcp")
    offline = auth_settings(farm_home, database_url, admin_key, NATS_URL="nats://127.0.0.1:1")
    async with running_auth(offline) as auth:
        with pytest.raises(grpc.aio.AioRpcError) as unpublished:
            await revoke(
                auth, admin_key, auth_pb2.RevokeCredentialRequest(id=credential_id(revoked))
            )
        assert unpublished.value.code() == grpc.StatusCode.UNAVAILABLE

        assert await renewal_code(auth, revoked) == grpc.StatusCode.UNAUTHENTICATED
