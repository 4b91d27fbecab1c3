"""CreateApiKey and RevokeApiKey refuse bad requests with INVALID_ARGUMENT naming the field,
and store a request at every bound as it was sent."""

import datetime as dt
from typing import Any

import grpc
import pytest

from farm.auth.v1 import auth_pb2
from farm_core.key_limits import MAX_TTL_SECONDS
from farm_core.scopes import PUBLIC_SCOPES
from tests.integration.auth.conftest import RPC_TIMEOUT, Auth

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url() -> str:
    """Validation happens before any SQL: SQLite is enough."""
    return ""


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"name": "", "scopes": ["tasks.read"]}, "name"),
        ({"name": "n" * 101, "scopes": ["tasks.read"]}, "name"),
        ({"name": "ci", "scopes": []}, "scopes"),
        ({"name": "ci", "scopes": ["internal"]}, "scopes"),
        ({"name": "ci", "scopes": ["admin", "admin"]}, "scopes"),
        ({"name": "ci", "scopes": ["tasks.read"], "ttl_seconds": -5}, "ttlSeconds"),
        ({"name": "ci", "scopes": ["tasks.read"], "ttl_seconds": 10**10}, "ttlSeconds"),
        ({"name": "ci", "scopes": ["tasks.read"], "tenant": "Acme Inc"}, "tenant"),
    ],
)
async def test_invalid_create_request_names_its_field(
    auth: Auth, request_fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth.keys.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(**request_fields),
            metadata=await auth.as_key(auth.admin_key),
            timeout=RPC_TIMEOUT,
        )

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith(f"{field}: ")
    assert len(await auth.list_keys(auth.admin_key)) == 1


async def test_revoke_without_id_names_the_field(auth: Auth) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth.revoke(auth.admin_key, "")

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "id: must be set"


async def test_a_request_at_every_bound_is_stored_as_sent(auth: Auth) -> None:
    tenant = "a" * 63
    created = await auth.create_key(
        auth.admin_key,
        name="n" * 100,
        scopes=tuple(sorted(PUBLIC_SCOPES)),
        tenant=tenant,
        ttl_seconds=MAX_TTL_SECONDS,
    )
    tenant_admin = await auth.create_key(auth.admin_key, scopes=("admin",), tenant=tenant)

    key = created.api_key
    assert (key.name, key.tenant, sorted(key.scopes)) == ("n" * 100, tenant, sorted(PUBLIC_SCOPES))
    lifetime = key.expire_time.ToDatetime() - key.create_time.ToDatetime()
    assert lifetime == dt.timedelta(seconds=MAX_TTL_SECONDS)
    assert key in await auth.list_keys(tenant_admin.secret)
