"""IdentityRenewalService over gRPC: the MCP service's credential renews the tokens its callers
showed it, and nothing else; a revoked key, an old or forged token, another credential: refused."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import cast

import grpc
import pytest

from farm.auth.v1 import auth_pb2, auth_pb2_grpc, renewal_pb2, renewal_pb2_grpc
from farm_core.identity import IDENTITY_HEADER, CredentialRole, IdentitySigner
from farm_core.identity_keys import new_private_key, private_pem
from tests.helpers import TEST_IDENTITY_KEY, TEST_SIGNER
from tests.integration.auth.conftest import RPC_TIMEOUT, Auth

pytestmark = pytest.mark.integration

MCP_CREDENTIAL = TEST_SIGNER.credential(CredentialRole.MCP, "mcp")
SCOPES = ("sessions", "artifacts.read")


@pytest.fixture
async def renewal(auth: Auth) -> AsyncIterator[renewal_pb2_grpc.IdentityRenewalServiceAsyncStub]:
    """The auth service's IdentityRenewalService, as the MCP service calls it."""
    async with grpc.aio.insecure_channel(auth.address) as channel:
        yield cast(
            "renewal_pb2_grpc.IdentityRenewalServiceAsyncStub",
            renewal_pb2_grpc.IdentityRenewalServiceStub(channel),
        )


async def renew(
    renewal: renewal_pb2_grpc.IdentityRenewalServiceAsyncStub,
    token: str,
    caller: str = MCP_CREDENTIAL,
) -> renewal_pb2.RenewIdentityResponse:
    """RenewIdentity of `token`, called with the identity token or credential `caller`."""
    reply: renewal_pb2.RenewIdentityResponse = await renewal.RenewIdentity(
        renewal_pb2.RenewIdentityRequest(token=token),
        metadata=((IDENTITY_HEADER, caller),),
        timeout=RPC_TIMEOUT,
    )
    return reply


async def refused(
    renewal: renewal_pb2_grpc.IdentityRenewalServiceAsyncStub,
    token: str,
    caller: str = MCP_CREDENTIAL,
) -> grpc.aio.AioRpcError:
    """The error RenewIdentity of `token` fails with."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await renew(renewal, token, caller)
    return caught.value


def expired_token(token: str, shown_seconds_ago: float) -> str:
    """A token auth's key signed for `token`'s identity, already expired, whose key was
    last shown at the edge `shown_seconds_ago`."""
    identity = TEST_SIGNER.decode(token)
    expired = IdentitySigner(TEST_IDENTITY_KEY, ttl_seconds=-1)
    return expired.renew(identity, time.time() - shown_seconds_ago)[0]


async def test_an_expired_token_of_a_valid_key_is_renewed_for_the_same_identity(
    auth: Auth, renewal: renewal_pb2_grpc.IdentityRenewalServiceAsyncStub
) -> None:
    created = await auth.create_key(auth.admin_key, scopes=SCOPES, tenant="acme")
    shown = await auth.identity_token(created.secret)
    stale = expired_token(shown, shown_seconds_ago=120)
    with pytest.raises(Exception, match="expired"):
        TEST_SIGNER.decode(stale)

    reply = await renew(renewal, stale)

    renewed = TEST_SIGNER.decode(reply.token)
    assert (renewed.tenant, renewed.key_id) == ("acme", created.api_key.id)
    assert renewed.scopes == frozenset(SCOPES) and renewed.role is None
    assert reply.expire_time.seconds > time.time()
    # Renewing the renewed token does not move the time the key was last shown.
    original = TEST_SIGNER.decode_for_renewal(stale).shown_at
    assert TEST_SIGNER.decode_for_renewal(reply.token).shown_at == original


async def test_a_revoked_keys_token_is_not_renewed(
    auth: Auth, renewal: renewal_pb2_grpc.IdentityRenewalServiceAsyncStub
) -> None:
    created = await auth.create_key(auth.admin_key, scopes=SCOPES)
    shown = await auth.identity_token(created.secret)
    await renew(renewal, shown)

    await auth.revoke(auth.admin_key, created.api_key.id)

    error = await refused(renewal, shown)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (error.details() or "")


async def test_only_the_mcp_credential_may_renew_and_it_may_call_nothing_else(
    auth: Auth, renewal: renewal_pb2_grpc.IdentityRenewalServiceAsyncStub
) -> None:
    created = await auth.create_key(auth.admin_key, scopes=SCOPES)
    shown = await auth.identity_token(created.secret)
    others = {
        "agent": TEST_SIGNER.credential(CredentialRole.AGENT, "agent-1"),
        "service": TEST_SIGNER.credential(CredentialRole.SERVICE, "storage"),
        "admin key": await auth.identity_token(auth.admin_key),
        "the key itself": shown,
    }
    for who, caller in others.items():
        error = await refused(renewal, shown, caller)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, who
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await renewal.RenewIdentity(
            renewal_pb2.RenewIdentityRequest(token=shown), timeout=RPC_TIMEOUT
        )
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    async with grpc.aio.insecure_channel(auth.address) as channel:
        keys = auth_pb2_grpc.AuthServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as whoami:
            await keys.WhoAmI(
                auth_pb2.WhoAmIRequest(),
                metadata=((IDENTITY_HEADER, MCP_CREDENTIAL),),
                timeout=RPC_TIMEOUT,
            )
    assert whoami.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_token_whose_key_was_shown_too_long_ago_is_not_renewed(
    auth: Auth, renewal: renewal_pb2_grpc.IdentityRenewalServiceAsyncStub
) -> None:
    created = await auth.create_key(auth.admin_key, scopes=SCOPES)
    shown = await auth.identity_token(created.secret)
    too_old = auth.settings.renewal_max_age_seconds + 60

    error = await refused(renewal, expired_token(shown, shown_seconds_ago=too_old))

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "last shown" in (error.details() or "")


async def test_forged_tokens_and_credentials_are_not_renewed(
    auth: Auth, renewal: renewal_pb2_grpc.IdentityRenewalServiceAsyncStub
) -> None:
    created = await auth.create_key(auth.admin_key, scopes=SCOPES)
    identity = TEST_SIGNER.decode(await auth.identity_token(created.secret))
    forger = IdentitySigner(private_pem(new_private_key()))
    forged = {
        "signed with another key": forger.encode(identity),
        "not a token": "x" * 40,
        # A credential lives long; renewing one would turn it into an API key's identity.
        "an agent credential": TEST_SIGNER.credential(CredentialRole.AGENT, "agent-1"),
        "the MCP credential": MCP_CREDENTIAL,
    }
    for what, token in forged.items():
        error = await refused(renewal, token)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, what
