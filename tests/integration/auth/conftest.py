"""The auth service run in-process on SQLite or PostgreSQL, called as Envoy and services do."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc

from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from farm_auth.server import AuthService
from farm_auth.settings import AuthSettings
from farm_core.identity import IDENTITY_HEADER, Identity
from tests.helpers import TEST_IDENTITY_KEY, TEST_SIGNER, serving

RPC_TIMEOUT = 10.0

Metadata = tuple[tuple[str, str], ...]


def new_admin_key() -> str:
    """A bootstrap admin key as the launcher makes them."""
    return "bf_" + secrets.token_urlsafe(32)


def auth_settings(
    farm_home: Path, database_url: str, admin_key: str | None, **overrides: Any
) -> AuthSettings:
    """Settings of an auth service on `database_url` ('' is SQLite under `farm_home`)."""
    return AuthSettings(
        FARM_HOME=farm_home,
        FARM_IDENTITY_KEY=TEST_IDENTITY_KEY,
        FARM_AUTH_DATABASE_URL=database_url,
        FARM_ADMIN_KEY=admin_key,
        **overrides,
    )


@dataclass(frozen=True)
class Auth:
    """A running auth service: its AuthService stub, and Check as Envoy calls it."""

    keys: auth_pb2_grpc.AuthServiceAsyncStub
    authorization: external_auth_pb2_grpc.AuthorizationStub
    admin_key: str
    settings: AuthSettings
    # host:port of the service, for other services that call it.
    address: str = ""

    async def check(
        self, authorization: str | None, **headers: str
    ) -> external_auth_pb2.CheckResponse:
        """Envoy's question about a request carrying `authorization` and `headers`."""
        request = external_auth_pb2.CheckRequest()
        http = request.attributes.request.http
        http.method, http.path = "POST", "/v1/tasks"
        http.headers.update(headers)
        if authorization is not None:
            http.headers["authorization"] = authorization
        reply: external_auth_pb2.CheckResponse = await self.authorization.Check(
            request, timeout=RPC_TIMEOUT
        )
        return reply

    async def identity_token(self, secret: str) -> str:
        """The x-farm-identity token Check hands Envoy for `secret`; fails if refused."""
        reply = await self.check(f"Bearer {secret}")
        assert reply.status.code == 0, reply.status.message
        (option,) = reply.ok_response.headers
        assert option.header.key == IDENTITY_HEADER
        return str(option.header.value)

    async def identity(self, secret: str) -> Identity:
        """Who Check says `secret` is."""
        return TEST_SIGNER.decode(await self.identity_token(secret))

    async def as_key(self, secret: str) -> Metadata:
        """Call metadata as Envoy forwards it for a request made with `secret`."""
        return ((IDENTITY_HEADER, await self.identity_token(secret)),)

    async def create_key(
        self,
        caller_secret: str,
        name: str = "ci",
        scopes: tuple[str, ...] = ("tasks.read",),
        tenant: str = "",
        ttl_seconds: int = 0,
    ) -> auth_pb2.CreateApiKeyResponse:
        """CreateApiKey called with `caller_secret`."""
        reply: auth_pb2.CreateApiKeyResponse = await self.keys.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(
                name=name, scopes=scopes, tenant=tenant, ttl_seconds=ttl_seconds
            ),
            metadata=await self.as_key(caller_secret),
            timeout=RPC_TIMEOUT,
        )
        return reply

    async def list_keys(self, caller_secret: str) -> list[auth_pb2.ApiKey]:
        """ListApiKeys called with `caller_secret`."""
        reply = await self.keys.ListApiKeys(
            auth_pb2.ListApiKeysRequest(),
            metadata=await self.as_key(caller_secret),
            timeout=RPC_TIMEOUT,
        )
        return list(reply.api_keys)

    async def revoke(self, caller_secret: str, key_id: str) -> auth_pb2.ApiKey:
        """RevokeApiKey called with `caller_secret`."""
        reply: auth_pb2.ApiKey = await self.keys.RevokeApiKey(
            auth_pb2.RevokeApiKeyRequest(id=key_id),
            metadata=await self.as_key(caller_secret),
            timeout=RPC_TIMEOUT,
        )
        return reply


@contextlib.asynccontextmanager
async def running_auth(
    settings: AuthSettings, service: AuthService | None = None
) -> AsyncIterator[Auth]:
    """Serves `service` (default: a new one with `settings`) on a free port until the block ends."""
    async with (
        serving(service or AuthService(settings), settings) as host,
        grpc.aio.insecure_channel(host.address) as channel,
    ):
        # grpc ships no types: mypy cannot tell that the stubs are made on an aio channel.
        yield Auth(
            keys=cast("auth_pb2_grpc.AuthServiceAsyncStub", auth_pb2_grpc.AuthServiceStub(channel)),
            authorization=external_auth_pb2_grpc.AuthorizationStub(channel),
            admin_key=settings.resolved_admin_key() or "",
            settings=settings,
            address=host.address,
        )


@pytest.fixture
async def auth(farm_home: Path, database_url: str) -> AsyncIterator[Auth]:
    """An auth service with a fresh bootstrap admin key."""
    async with running_auth(auth_settings(farm_home, database_url, new_admin_key())) as running:
        yield running
