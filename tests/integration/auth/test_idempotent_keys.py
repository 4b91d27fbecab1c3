"""CreateApiKey's idempotencyKey: a repeated create makes no second key (SQLite, PostgreSQL)."""

import asyncio
from collections.abc import Awaitable
from typing import Any

import grpc
import pytest

from farm.auth.v1 import auth_pb2
from tests.integration.auth.conftest import Auth

pytestmark = pytest.mark.integration


async def refusal(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """The error the awaited `call` fails with."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def named(keys: list[auth_pb2.ApiKey], name: str) -> list[auth_pb2.ApiKey]:
    """The keys called `name`."""
    return [key for key in keys if key.name == name]


async def test_a_repeated_create_names_the_first_key_and_makes_no_second(auth: Auth) -> None:
    first = await auth.create_key(
        auth.admin_key,
        name="nightly",
        scopes=("tasks.read", "tasks.write"),
        ttl_seconds=3600,
        idempotency_key="form-1",
    )

    error = await refusal(
        auth.create_key(
            auth.admin_key,
            name="nightly",
            scopes=("tasks.write", "tasks.read"),
            ttl_seconds=3600,
            idempotency_key="form-1",
        )
    )

    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert first.api_key.id in (error.details() or "")
    assert "form-1" in (error.details() or "")
    assert named(await auth.list_keys(auth.admin_key), "nightly") == [first.api_key]


async def test_the_same_idempotency_key_with_another_request_is_refused(auth: Auth) -> None:
    first = await auth.create_key(auth.admin_key, name="ci", idempotency_key="form-2")

    changes: list[dict[str, Any]] = [
        {"name": "other"},
        {"scopes": ("tasks.write",)},
        {"ttl_seconds": 60},
        {"tenant": "acme"},
    ]
    for changed in changes:
        request = {"name": "ci", **changed, "idempotency_key": "form-2"}
        error = await refusal(auth.create_key(auth.admin_key, **request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, changed
        assert (error.details() or "").startswith("idempotencyKey: 'form-2' was used by API key")
        assert first.api_key.id in (error.details() or "")
    listed = await auth.list_keys(auth.admin_key)
    assert [key.id for key in listed if key.name in ("ci", "other")] == [first.api_key.id]


async def test_idempotency_keys_are_the_callers_tenants_own(auth: Auth) -> None:
    acme_admin = await auth.create_key(
        auth.admin_key, name="acme-admin", scopes=("admin",), tenant="acme", idempotency_key="k"
    )

    # The same key from another tenant's caller is that tenant's own: a new key.
    acme_key = await auth.create_key(
        acme_admin.secret, name="acme-admin", scopes=("admin",), idempotency_key="k"
    )

    assert acme_key.api_key.id != acme_admin.api_key.id
    assert len(named(await auth.list_keys(acme_admin.secret), "acme-admin")) == 2


async def test_concurrent_creates_with_one_idempotency_key_make_one_key(auth: Auth) -> None:
    outcomes = await asyncio.gather(
        *(
            auth.create_key(auth.admin_key, name="burst", idempotency_key="form-3")
            for _ in range(6)
        ),
        return_exceptions=True,
    )

    created = [o for o in outcomes if isinstance(o, auth_pb2.CreateApiKeyResponse)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(created) == 1 and len(refused) == 5, outcomes
    assert {error.code() for error in refused} == {grpc.StatusCode.ALREADY_EXISTS}
    assert named(await auth.list_keys(auth.admin_key), "burst") == [created[0].api_key]


async def test_an_idempotency_key_over_128_characters_is_refused(auth: Auth) -> None:
    error = await refusal(auth.create_key(auth.admin_key, idempotency_key="k" * 129))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("idempotencyKey: must be at most 128 characters")
