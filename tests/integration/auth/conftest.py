"""The auth service run in-process on SQLite or PostgreSQL, called as Envoy and services do."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import grpc
import pytest

from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from farm_auth.server import AuthService
from farm_auth.settings import AuthSettings
from farm_core.identity import IDENTITY_HEADER, Identity
from tests.helpers import TEST_IDENTITY_KEY, TEST_SIGNER, assert_eventually, serving

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
        **{"check_port": 0, **overrides},
    )


@dataclass(frozen=True)
class CheckReply:
    """The edge check's HTTP answer, as Envoy reads it."""

    http_status: int
    # Lower-case names.
    headers: Mapping[str, str]
    body: str

    @property
    def allowed(self) -> bool:
        """Whether Envoy lets the request through."""
        return self.http_status == 200

    @property
    def code(self) -> int:
        """The gRPC status code a caller gets: 0 when allowed."""
        if self.allowed:
            return 0
        if "grpc-status" in self.headers:
            return int(self.headers["grpc-status"])
        return int(json.loads(self.body)["code"])

    @property
    def message(self) -> str:
        """The refusal's message ('' when allowed)."""
        if self.allowed or "grpc-status" in self.headers:
            return self.body
        return str(json.loads(self.body)["message"])


@dataclass(frozen=True)
class Auth:
    """A running auth service: its AuthService stub, and its edge check as Envoy calls it."""

    keys: auth_pb2_grpc.AuthServiceAsyncStub
    http: aiohttp.ClientSession
    # http://host:port/check, where Envoy asks about each request.
    check_url: str
    admin_key: str
    settings: AuthSettings
    # host:port of the service, for other services that call it.
    address: str = ""

    async def check(
        self,
        authorization: str | None,
        headers: Mapping[str, str] | None = None,
        *,
        path: str = "/v1/tasks",
        method: str = "POST",
        client_address: str = "",
        body: bytes = b"",
    ) -> CheckReply:
        """Envoy's question about a request carrying `authorization` and `headers`."""
        sent = dict(headers or {})
        if authorization is not None:
            sent["authorization"] = authorization
        if client_address:
            sent["x-farm-client-address"] = client_address
        async with self.http.request(
            method, self.check_url + path, headers=sent, data=body or None
        ) as answer:
            return CheckReply(
                answer.status,
                {name.lower(): value for name, value in answer.headers.items()},
                await answer.text(),
            )

    async def identity_token(self, secret: str) -> str:
        """The x-farm-identity token the check hands Envoy for `secret`; fails if refused."""
        reply = await self.check(f"Bearer {secret}")
        assert reply.code == 0, reply.message
        assert "authorization" in reply.headers["x-envoy-auth-headers-to-remove"].split(",")
        return reply.headers[IDENTITY_HEADER]

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
        idempotency_key: str = "",
    ) -> auth_pb2.CreateApiKeyResponse:
        """CreateApiKey called with `caller_secret`."""
        reply: auth_pb2.CreateApiKeyResponse = await self.keys.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(
                name=name,
                scopes=scopes,
                tenant=tenant,
                ttl_seconds=ttl_seconds,
                idempotency_key=idempotency_key,
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
    service = service or AuthService(settings)
    async with (
        serving(service, settings) as host,
        grpc.aio.insecure_channel(host.address) as channel,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=RPC_TIMEOUT)) as http,
    ):
        # grpc ships no types: mypy cannot tell that the stubs are made on an aio channel.
        yield Auth(
            keys=cast("auth_pb2_grpc.AuthServiceAsyncStub", auth_pb2_grpc.AuthServiceStub(channel)),
            http=http,
            check_url=f"http://{settings.host}:{service.check_port}/check",
            admin_key=settings.resolved_admin_key() or "",
            settings=settings,
            address=host.address,
        )


async def check_from(auth: Auth, address: str, secret: str) -> CheckReply:
    """The check as Envoy asks it for a request from `address` with `secret`."""
    return await auth.check(f"Bearer {secret}", client_address=address)


def denial(reply: CheckReply) -> tuple[int, Mapping[str, str]]:
    """The HTTP status and headers of a refusal."""
    assert not reply.allowed
    return reply.http_status, reply.headers


async def wait_for_routes(auth: Auth) -> None:
    """Until the check reads the sessions' routes (it connects to NATS in the background)."""

    async def readable() -> bool:
        reply = await auth.check(
            f"Bearer {auth.admin_key}", path="/v1/sessions/ses_0000000000000000/cdp", method="GET"
        )
        return reply.http_status == 404

    await assert_eventually(readable, within=30, message="the session routes never became readable")


@pytest.fixture
async def auth(farm_home: Path, database_url: str) -> AsyncIterator[Auth]:
    """An auth service with a fresh bootstrap admin key."""
    async with running_auth(auth_settings(farm_home, database_url, new_admin_key())) as running:
        yield running
