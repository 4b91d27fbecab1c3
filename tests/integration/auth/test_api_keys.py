"""AuthService over gRPC: creating, listing and revoking keys, tenants kept apart."""

import contextlib
import json
from collections.abc import Awaitable
from pathlib import Path

import grpc
import pytest
from nats.aio.client import Client
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NoKeysError
from sqlalchemy import text

from farm.auth.v1 import auth_pb2
from farm_core.db import create_engine
from farm_core.key_revocations import SECRETS_ENTRY_PREFIX, revoked_keys_bucket
from farm_core.key_validity import KeySecrets
from farm_core.nats_access import NatsAccess
from farm_core.queue import connect
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.auth.conftest import (
    RPC_TIMEOUT,
    Auth,
    auth_settings,
    new_admin_key,
    running_auth,
)

pytestmark = pytest.mark.integration


async def test_create_returns_the_secret_once(auth: Auth) -> None:
    created = await auth.create_key(auth.admin_key, name="nightly", scopes=("tasks.write",))

    key = created.api_key
    assert created.secret.startswith("bf_")
    assert key.id.startswith("key_")
    assert (key.name, key.tenant, list(key.scopes)) == ("nightly", "default", ["tasks.write"])
    assert key.HasField("create_time")
    assert not key.HasField("expire_time")
    assert not key.HasField("revoke_time")
    listed = await auth.list_keys(auth.admin_key)
    assert key in listed
    assert created.secret not in str(listed)


async def test_keys_are_listed_newest_first(auth: Auth) -> None:
    first = await auth.create_key(auth.admin_key, name="first")
    second = await auth.create_key(auth.admin_key, name="second")

    listed = await auth.list_keys(auth.admin_key)

    assert [key.name for key in listed] == ["second", "first", "bootstrap-admin"]
    assert [key.id for key in listed[:2]] == [second.api_key.id, first.api_key.id]


async def test_revoking_twice_returns_the_key_unchanged(auth: Auth) -> None:
    created = await auth.create_key(auth.admin_key)

    revoked = await auth.revoke(auth.admin_key, created.api_key.id)
    again = await auth.revoke(auth.admin_key, created.api_key.id)

    assert revoked.HasField("revoke_time")
    assert again == revoked
    (listed,) = [key for key in await auth.list_keys(auth.admin_key) if key.id == revoked.id]
    assert listed == revoked


async def test_unknown_key_id_is_not_found(auth: Auth) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth.revoke(auth.admin_key, "key_0000000000000000")

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_key_without_admin_cannot_manage_keys(auth: Auth) -> None:
    reader = await auth.create_key(auth.admin_key, scopes=("tasks.read", "tasks.write"))

    for call in (
        auth.create_key(reader.secret),
        auth.list_keys(reader.secret),
        auth.revoke(reader.secret, reader.api_key.id),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "admin" in (caught.value.details() or "")


async def test_bootstrap_admin_creates_an_isolated_tenant(auth: Auth) -> None:
    acme_admin = await auth.create_key(
        auth.admin_key, name="acme-admin", scopes=("admin",), tenant="acme"
    )
    acme_reader = await auth.create_key(acme_admin.secret, name="acme-reader")
    default_key = await auth.create_key(auth.admin_key, name="default-reader")

    acme_keys = await auth.list_keys(acme_admin.secret)
    all_keys = await auth.list_keys(auth.admin_key)

    assert acme_reader.api_key.tenant == "acme"
    assert {key.id for key in acme_keys} == {acme_admin.api_key.id, acme_reader.api_key.id}
    assert {key.tenant for key in all_keys} == {"acme", "default"}
    assert default_key.api_key.id in {key.id for key in all_keys}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth.revoke(acme_admin.secret, default_key.api_key.id)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await auth.identity(default_key.secret)).tenant == "default"
    assert await tenant_names(auth) == {"acme", "default"}


async def tenant_names(auth: Auth) -> set[str]:
    engine = create_engine(auth.settings.resolved_database_url())
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT name FROM tenants"))
            return {str(name) for (name,) in rows}
    finally:
        await engine.dispose()


async def test_bootstrap_admin_may_revoke_any_tenants_key(auth: Auth) -> None:
    other = await auth.create_key(auth.admin_key, tenant="other")

    revoked = await auth.revoke(auth.admin_key, other.api_key.id)

    assert (revoked.tenant, revoked.HasField("revoke_time")) == ("other", True)


async def test_other_tenants_admin_cannot_name_another_tenant(auth: Auth) -> None:
    acme_admin = await auth.create_key(auth.admin_key, scopes=("admin",), tenant="acme")

    for tenant in ("default", "globex"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await auth.create_key(acme_admin.secret, tenant=tenant)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert (caught.value.details() or "").startswith("tenant: ")
    same = await auth.create_key(acme_admin.secret, tenant="acme")
    assert same.api_key.tenant == "acme"


async def test_who_am_i_describes_the_callers_key(auth: Auth) -> None:
    created = await auth.create_key(
        auth.admin_key, name="me", scopes=("sessions", "script"), tenant="acme"
    )

    me = await auth.keys.WhoAmI(
        auth_pb2.WhoAmIRequest(), metadata=await auth.as_key(created.secret), timeout=RPC_TIMEOUT
    )

    assert me.tenant == "acme"
    assert me.key_id == created.api_key.id
    assert me.key_name == "me"
    assert sorted(me.scopes) == ["script", "sessions"]


async def test_a_key_that_expires_makes_and_takes_over_no_key_that_outlives_it(
    auth: Auth,
) -> None:
    short_admin = await auth.create_key(auth.admin_key, scopes=("admin",), ttl_seconds=600)
    lasting = await auth.create_key(auth.admin_key, name="lasting")

    for ttl_seconds in (0, 601 + 60):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await auth.create_key(short_admin.secret, ttl_seconds=ttl_seconds)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert (caught.value.details() or "").startswith("ttlSeconds: ")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth.keys.RotateApiKey(
            auth_pb2.RotateApiKeyRequest(id=lasting.api_key.id),
            metadata=await auth.as_key(short_admin.secret),
            timeout=RPC_TIMEOUT,
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    within = await auth.create_key(short_admin.secret, name="within", ttl_seconds=300)
    assert within.api_key.HasField("expire_time")
    rotated = await auth.keys.RotateApiKey(
        auth_pb2.RotateApiKeyRequest(id=within.api_key.id),
        metadata=await auth.as_key(short_admin.secret),
        timeout=RPC_TIMEOUT,
    )
    assert rotated.secret.startswith("bf_")


async def revoked_named(connection: Client) -> list[str]:
    """The key ids named as revoked on NATS (not the notices of keys' secrets)."""
    # Auth makes the bucket as it connects, maybe after the revoke.
    with contextlib.suppress(BucketNotFoundError, NoKeysError):
        bucket = await revoked_keys_bucket(connection.jetstream(), create=False)
        return [key for key in await bucket.keys() if not key.startswith(SECRETS_ENTRY_PREFIX)]
    return []


async def test_a_revoke_names_the_key_to_the_agents_on_nats(
    farm_home: Path, database_url: str, fresh_nats_server: NatsServer
) -> None:
    # The agents end the session sockets of each key named there.
    settings = auth_settings(
        farm_home, database_url, new_admin_key(), NATS_URL=fresh_nats_server.url
    )
    connection = await connect(NatsAccess(fresh_nats_server.url), "test-agent")
    try:
        async with running_auth(settings) as auth:
            created = await auth.create_key(auth.admin_key, scopes=("sessions",))
            kept = await auth.create_key(auth.admin_key, scopes=("sessions",))
            await auth.revoke(auth.admin_key, created.api_key.id)

            def named() -> Awaitable[list[str]]:
                return revoked_named(connection)

            await assert_eventually(named, within=15, message="no revoked key named on NATS")
            assert await named() == [created.api_key.id]
            assert kept.api_key.id != created.api_key.id
    finally:
        await connection.close()


async def test_a_revoke_made_while_nats_was_away_is_named_by_the_next_auth_start(
    farm_home: Path, database_url: str, fresh_nats_server: NatsServer
) -> None:
    # The replica that took the revoke stopped before NATS was there to hear it.
    admin = new_admin_key()
    async with running_auth(auth_settings(farm_home, database_url, admin)) as auth:
        created = await auth.create_key(auth.admin_key, scopes=("sessions",))
        await auth.revoke(auth.admin_key, created.api_key.id)
    settings = auth_settings(farm_home, database_url, admin, NATS_URL=fresh_nats_server.url)
    connection = await connect(NatsAccess(fresh_nats_server.url), "test-agent")
    try:
        async with running_auth(settings):

            def named() -> Awaitable[list[str]]:
                return revoked_named(connection)

            await assert_eventually(named, within=15, message="the revoke was never named")
            assert await named() == [created.api_key.id]
    finally:
        await connection.close()


async def test_a_rotation_made_while_nats_was_away_is_named_by_the_next_auth_start(
    farm_home: Path, database_url: str, fresh_nats_server: NatsServer
) -> None:
    # The sockets opened with the old secret end with its grace only once agents hear of it.
    admin = new_admin_key()
    async with running_auth(auth_settings(farm_home, database_url, admin)) as auth:
        created = await auth.create_key(auth.admin_key, scopes=("sessions",))
        await auth.keys.RotateApiKey(
            auth_pb2.RotateApiKeyRequest(id=created.api_key.id, grace_seconds=60),
            metadata=await auth.as_key(auth.admin_key),
            timeout=10,
        )
    settings = auth_settings(farm_home, database_url, admin, NATS_URL=fresh_nats_server.url)
    connection = await connect(NatsAccess(fresh_nats_server.url), "test-agent")
    entry = SECRETS_ENTRY_PREFIX + created.api_key.id
    try:
        async with running_auth(settings):

            async def secrets() -> KeySecrets | None:
                with contextlib.suppress(BucketNotFoundError, KeyNotFoundError):
                    bucket = await revoked_keys_bucket(connection.jetstream(), create=False)
                    value = (await bucket.get(entry)).value or b"{}"
                    return KeySecrets.from_json(created.api_key.id, json.loads(value))
                return None

            await assert_eventually(secrets, within=15, message="the rotation was never named")
            named = await secrets()
            assert named is not None and named.current and named.previous
            assert named.current != named.previous and named.previous_until > 0
    finally:
        await connection.close()
