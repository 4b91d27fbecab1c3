"""Limits and the key lifecycle in the auth service: set, shown, vouched for, enforced in Check."""

import json
from pathlib import Path

import grpc
import pytest

from farm.auth.v1 import auth_pb2
from farm_core.console_headers import CONSOLE_CLIENT_HEADER, CONSOLE_CREDENTIAL_HEADER
from farm_core.db import utcnow
from farm_core.identity import CredentialRole, IdentitySigner
from farm_core.identity_keys import new_private_key, private_pem
from farm_core.quotas import TenantQuotas
from farm_core.timestamps import from_timestamp
from tests.helpers import TEST_SIGNER, assert_eventually
from tests.integration.auth.conftest import (
    RPC_TIMEOUT,
    Auth,
    CheckReply,
    auth_settings,
    check_from,
    denial,
    new_admin_key,
    running_auth,
)

pytestmark = pytest.mark.integration

RESOURCE_EXHAUSTED = 8
HTTP_TOO_MANY_REQUESTS = 429


async def test_tenant_quotas_set_by_an_operator_travel_in_the_identity(auth: Auth) -> None:
    created = await auth.create_key(auth.admin_key, tenant="acme")

    tenant = await auth.keys.UpdateTenantLimits(
        auth_pb2.UpdateTenantLimitsRequest(name="acme", max_queued_tasks=5, max_artifact_bytes=9),
        metadata=await auth.as_key(auth.admin_key),
        timeout=RPC_TIMEOUT,
    )
    expected = TenantQuotas(
        max_queued_tasks=5,
        max_running_tasks=auth.settings.max_running_tasks,
        max_artifact_bytes=9,
        max_open_sessions=auth.settings.max_open_sessions,
    )

    assert tenant.limits == auth_pb2.TenantLimits(max_queued_tasks=5, max_artifact_bytes=9)
    assert tenant.effective_limits.max_running_tasks == auth.settings.max_running_tasks

    async def vouched_for() -> bool:
        return (await auth.identity(created.secret)).quotas == expected

    # Within the key cache's lifetime: a key looked up before the change may be trusted
    # as it was until then.
    await assert_eventually(
        vouched_for,
        within=auth.settings.key_cache_seconds + 2,
        message="the identity does not carry the new quotas",
    )


async def test_unset_fields_stay_and_zero_returns_to_the_default(auth: Auth) -> None:
    metadata = await auth.as_key(auth.admin_key)
    await auth.keys.UpdateTenantLimits(
        auth_pb2.UpdateTenantLimitsRequest(name="acme", max_queued_tasks=5, max_running_tasks=2),
        metadata=metadata,
        timeout=RPC_TIMEOUT,
    )
    tenant = await auth.keys.UpdateTenantLimits(
        auth_pb2.UpdateTenantLimitsRequest(name="acme", max_queued_tasks=0),
        metadata=metadata,
        timeout=RPC_TIMEOUT,
    )

    assert tenant.limits == auth_pb2.TenantLimits(max_running_tasks=2)
    assert tenant.effective_limits.max_queued_tasks == auth.settings.max_queued_tasks


async def test_a_tenant_admin_may_read_but_not_raise_its_own_quotas(auth: Auth) -> None:
    tenant_admin = await auth.create_key(auth.admin_key, scopes=("admin",), tenant="acme")
    metadata = await auth.as_key(tenant_admin.secret)

    own = await auth.keys.GetTenant(
        auth_pb2.GetTenantRequest(name="acme"), metadata=metadata, timeout=RPC_TIMEOUT
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.keys.UpdateTenantLimits(
            auth_pb2.UpdateTenantLimitsRequest(name="acme", max_queued_tasks=10**9),
            metadata=metadata,
            timeout=RPC_TIMEOUT,
        )
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await auth.keys.GetTenant(
            auth_pb2.GetTenantRequest(name="default"), metadata=metadata, timeout=RPC_TIMEOUT
        )

    assert own.name == "acme"
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert raised.value.details() == (
        f"only an admin of the bootstrap tenant {auth.settings.bootstrap_tenant!r} "
        "may change a tenant's quotas"
    )
    assert other.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_bad_limit_names_its_field(auth: Auth) -> None:
    created = await auth.create_key(auth.admin_key)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.keys.UpdateApiKey(
            auth_pb2.UpdateApiKeyRequest(id=created.api_key.id, rate_limit_burst=-1),
            metadata=await auth.as_key(auth.admin_key),
            timeout=RPC_TIMEOUT,
        )

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (raised.value.details() or "").startswith("rateLimitBurst: ")


async def test_check_refuses_a_key_over_its_rate_with_429_and_retry_after(auth: Auth) -> None:
    created = await auth.create_key(auth.admin_key)
    updated = await auth.keys.UpdateApiKey(
        auth_pb2.UpdateApiKeyRequest(
            id=created.api_key.id, rate_limit_per_second=1, rate_limit_burst=2
        ),
        metadata=await auth.as_key(auth.admin_key),
        timeout=RPC_TIMEOUT,
    )
    assert updated.effective_rate_limit == auth_pb2.RateLimit(per_second=1, burst=2)

    replies = [await auth.check(f"Bearer {created.secret}") for _ in range(3)]
    grpc_reply = await auth.check(
        f"Bearer {created.secret}", {"x-farm-content-type": "application/grpc"}
    )

    assert [reply.code for reply in replies[:2]] == [0, 0]
    status, headers = denial(replies[2])
    assert (replies[2].code, status) == (RESOURCE_EXHAUSTED, HTTP_TOO_MANY_REQUESTS)
    assert headers["retry-after"] == "1"
    assert json.loads(replies[2].body)["code"] == RESOURCE_EXHAUSTED
    assert denial(grpc_reply)[1]["grpc-status"] == str(RESOURCE_EXHAUSTED)


async def test_a_rotated_keys_old_secret_works_only_for_its_grace(auth: Auth) -> None:
    created = await auth.create_key(auth.admin_key, tenant="acme")
    await auth.identity(created.secret)  # now in the key cache

    rotated = await auth.keys.RotateApiKey(
        auth_pb2.RotateApiKeyRequest(id=created.api_key.id, grace_seconds=1),
        metadata=await auth.as_key(auth.admin_key),
        timeout=RPC_TIMEOUT,
    )

    assert rotated.secret != created.secret
    assert rotated.api_key.HasField("previous_secret_expire_time")
    assert (await auth.identity(rotated.secret)).key_id == created.api_key.id
    assert (await auth.identity(created.secret)).key_id == created.api_key.id
    grace_end = from_timestamp(rotated.api_key.previous_secret_expire_time)

    async def old_secret_refused() -> bool:
        reply = await auth.check(f"Bearer {created.secret}")
        refused: bool = not reply.allowed
        return refused

    await assert_eventually(
        old_secret_refused, within=5, message="the old secret is accepted past its grace"
    )
    assert utcnow() >= grace_end
    refused = await auth.check(f"Bearer {created.secret}")
    assert refused.http_status == 401
    assert "rotated" in refused.message
    assert (await auth.identity(rotated.secret)).tenant == "acme"


@pytest.mark.parametrize("change", ["RotateApiKey", "UpdateApiKey"])
async def test_a_revoked_key_cannot_be_rotated_or_updated(auth: Auth, change: str) -> None:
    created = await auth.create_key(auth.admin_key)
    await auth.revoke(auth.admin_key, created.api_key.id)
    key_id = created.api_key.id
    request = (
        auth_pb2.RotateApiKeyRequest(id=key_id)
        if change == "RotateApiKey"
        else auth_pb2.UpdateApiKeyRequest(id=key_id, rate_limit_per_second=3)
    )

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await getattr(auth.keys, change)(
            request, metadata=await auth.as_key(auth.admin_key), timeout=RPC_TIMEOUT
        )

    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert raised.value.details() == f"API key {key_id!r} is revoked; create a new one"
    listed = await auth.keys.ListApiKeys(
        auth_pb2.ListApiKeysRequest(), metadata=await auth.as_key(auth.admin_key)
    )
    (key,) = [key for key in listed.api_keys if key.id == key_id]
    assert key.rate_limit == auth_pb2.RateLimit()


async def test_an_address_over_its_failed_attempts_is_blocked_even_with_a_valid_key(
    farm_home: Path,
) -> None:
    settings = auth_settings(farm_home, "", new_admin_key(), failed_auth_limit=3)
    async with running_auth(settings) as auth:
        for _ in range(4):
            wrong = await check_from(auth, "10.1.2.3", "bf_wrong")
            assert denial(wrong)[0] == 401

        blocked = await check_from(auth, "10.1.2.3", auth.admin_key)
        elsewhere = await check_from(auth, "10.1.2.4", auth.admin_key)

    status, headers = denial(blocked)
    assert status == HTTP_TOO_MANY_REQUESTS
    assert int(headers["retry-after"]) == 60
    assert elsewhere.code == 0


async def test_the_consoles_calls_count_against_the_browser_it_names_with_its_credential(
    farm_home: Path,
) -> None:
    settings = auth_settings(farm_home, "", new_admin_key(), failed_auth_limit=3)
    console_peer = "10.1.2.3"
    credential = TEST_SIGNER.credential(CredentialRole.CONSOLE, "console")
    forged = IdentitySigner(private_pem(new_private_key())).credential(
        CredentialRole.CONSOLE, "console"
    )

    async def for_browser(secret: str, browser: str, token: str = credential) -> CheckReply:
        headers = {CONSOLE_CREDENTIAL_HEADER: token, CONSOLE_CLIENT_HEADER: browser}
        return await auth.check(f"Bearer {secret}", headers, client_address=console_peer)

    async with running_auth(settings) as auth:
        # Six refused keys from the console's address, three of each browser's.
        for browser in ("192.0.2.1", "192.0.2.2"):
            for _ in range(3):
                assert denial(await for_browser("bf_wrong", browser))[0] == 401
        other_browser = await for_browser(auth.admin_key, "192.0.2.3")
        console_itself = await check_from(auth, console_peer, auth.admin_key)
        # One more of the first browser's is past the limit: that browser is blocked.
        await for_browser("bf_wrong", "192.0.2.1")
        first_browser = await for_browser(auth.admin_key, "192.0.2.1")
        # Without a credential auth's key signed, the named browser is not believed: the
        # refused keys count against the peer, which is then blocked. Not the console's
        # genuine calls, which are counted by their browsers.
        for attempt in range(4):
            await for_browser("bf_wrong", f"192.0.2.{100 + attempt}", forged)
        after_forgeries = await check_from(auth, console_peer, auth.admin_key)
        genuine = await for_browser(auth.admin_key, "192.0.2.4")

    assert other_browser.code == 0
    assert console_itself.code == 0
    assert denial(first_browser)[0] == HTTP_TOO_MANY_REQUESTS
    assert "192.0.2.1" in first_browser.body
    assert denial(after_forgeries)[0] == HTTP_TOO_MANY_REQUESTS
    assert console_peer in after_forgeries.body
    assert genuine.code == 0
