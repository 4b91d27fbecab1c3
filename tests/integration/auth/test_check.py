"""Envoy's ext_authz Check: valid keys become signed identities, anything else a 401."""

import json
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from farm.auth.v1 import auth_pb2
from farm_core.identity import IDENTITY_HEADER
from farm_core.scopes import PUBLIC_SCOPES
from tests.helpers import TEST_SIGNER, assert_eventually
from tests.integration.auth.conftest import (
    RPC_TIMEOUT,
    Auth,
    CheckReply,
    auth_settings,
    running_auth,
)

pytestmark = pytest.mark.integration

UNAUTHENTICATED = 16
HTTP_UNAUTHORIZED = 401


def assert_refused(reply: CheckReply, message: str) -> None:
    assert not reply.allowed
    assert reply.code == UNAUTHENTICATED
    assert reply.message == message
    assert reply.http_status == HTTP_UNAUTHORIZED
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.headers["www-authenticate"] == "Bearer"
    assert json.loads(reply.body) == {"code": UNAUTHENTICATED, "message": message}


def checks(outcome: str) -> float:
    return REGISTRY.get_sample_value("farm_auth_checks_total", {"outcome": outcome}) or 0.0


async def test_bootstrap_admin_key_is_admin_of_the_bootstrap_tenant(auth: Auth) -> None:
    identity = await auth.identity(auth.admin_key)

    assert identity.tenant == "default"
    assert identity.key_name == "bootstrap-admin"
    assert identity.scopes == PUBLIC_SCOPES
    assert identity.key_id.startswith("key_")


async def test_created_key_is_accepted_with_its_tenant_and_scopes(auth: Auth) -> None:
    created = await auth.create_key(
        auth.admin_key, name="reader", scopes=("tasks.read", "artifacts.read"), tenant="acme"
    )

    identity = await auth.identity(created.secret)

    assert identity.tenant == "acme"
    assert identity.key_id == created.api_key.id
    assert identity.key_name == "reader"
    assert identity.scopes == {"tasks.read", "artifacts.read"}


async def test_identity_token_is_accepted_by_the_services(auth: Auth) -> None:
    created = await auth.create_key(auth.admin_key, scopes=("tasks.write",))

    me = await auth.keys.WhoAmI(
        auth_pb2.WhoAmIRequest(), metadata=await auth.as_key(created.secret), timeout=RPC_TIMEOUT
    )

    assert (me.tenant, me.key_id, list(me.scopes), me.key_name) == (
        "default",
        created.api_key.id,
        ["tasks.write"],
        "ci",
    )


async def test_raw_key_is_removed_and_incoming_identity_overwritten(auth: Auth) -> None:
    reply = await auth.check(f"Bearer {auth.admin_key}", {IDENTITY_HEADER: "forged"})

    assert reply.code == 0
    assert "authorization" in reply.headers["x-envoy-auth-headers-to-remove"].split(",")
    assert reply.headers[IDENTITY_HEADER] != "forged"
    assert TEST_SIGNER.decode(reply.headers[IDENTITY_HEADER]).key_name == "bootstrap-admin"


async def test_lower_case_bearer_scheme_is_accepted(auth: Auth) -> None:
    reply = await auth.check(f"bearer {auth.admin_key}")

    assert reply.code == 0


async def test_request_without_key_is_refused(auth: Auth) -> None:
    missing_before = checks("missing")

    assert_refused(await auth.check(None), "missing API key: send authorization: Bearer <key>")
    assert_refused(await auth.check("Bearer "), "missing API key: send authorization: Bearer <key>")
    assert checks("missing") == missing_before + 2


async def test_garbage_and_unknown_keys_are_refused(auth: Auth) -> None:
    unknown_before = checks("unknown")

    assert_refused(await auth.check("Bearer !!garbage!!"), "unknown API key")
    assert_refused(await auth.check(f"Bearer {auth.admin_key}x"), "unknown API key")
    assert_refused(await auth.check("Bearer bf_" + "A" * 43), "unknown API key")
    assert checks("unknown") == unknown_before + 3


async def test_non_bearer_scheme_is_refused(auth: Auth) -> None:
    reply = await auth.check(f"Basic {auth.admin_key}")

    assert_refused(
        reply, "authorization must use the Bearer scheme: send authorization: Bearer <key>"
    )


async def test_revoked_key_is_refused_at_once(auth: Auth) -> None:
    created = await auth.create_key(auth.admin_key)
    await auth.identity(created.secret)  # now in the cache

    await auth.revoke(auth.admin_key, created.api_key.id)

    assert_refused(await auth.check(f"Bearer {created.secret}"), "API key revoked")


async def test_revoke_reaches_every_replica_within_the_cache_lifetime(
    farm_home: Path, database_url: str, auth: Auth
) -> None:
    settings = auth_settings(farm_home, database_url, auth.admin_key)
    async with running_auth(settings) as replica:
        created = await auth.create_key(auth.admin_key)
        await replica.identity(created.secret)  # the replica now trusts it for a while

        await auth.revoke(auth.admin_key, created.api_key.id)
        revoked_at = time.monotonic()

        async def refused_by_replica() -> bool:
            reply = await replica.check(f"Bearer {created.secret}")
            refused: bool = reply.code == UNAUTHENTICATED
            return refused

        await assert_eventually(
            refused_by_replica,
            within=settings.key_cache_seconds + 1.0,
            message="the replica still accepts the revoked key",
        )
        assert time.monotonic() - revoked_at <= settings.key_cache_seconds + 0.5
        assert_refused(await replica.check(f"Bearer {created.secret}"), "API key revoked")


async def test_key_is_refused_once_its_ttl_is_over(auth: Auth) -> None:
    created = await auth.create_key(auth.admin_key, ttl_seconds=2)
    assert created.api_key.expire_time.seconds - created.api_key.create_time.seconds == 2
    await auth.identity(created.secret)

    async def expired() -> bool:
        reply = await auth.check(f"Bearer {created.secret}")
        expired: bool = reply.message == "API key expired"
        return expired

    await assert_eventually(expired, within=5, message="the key is still accepted")
    assert_refused(await auth.check(f"Bearer {created.secret}"), "API key expired")
