"""CreateApiKey and RevokeApiKey refuse bad requests with INVALID_ARGUMENT naming the field."""

from typing import Any

import grpc
import pytest

from farm.auth.v1 import auth_pb2
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
