"""The shared server bootstrap: identity and scope checks, error mapping, health, stop."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from farm_core.errors import InvalidArgument
from farm_core.free_ports import free_port
from farm_core.identity import IDENTITY_HEADER, Identity, IdentitySigner, current_identity
from farm_core.identity_keys import new_private_key, private_pem
from farm_core.revocations import RevokedCredentials
from farm_core.scopes import ANY_IDENTITY
from farm_core.server import ServiceHost, serve
from farm_core.settings import FarmSettings
from tests.helpers import (
    TEST_PUBLIC_KEY,
    TEST_SIGNER,
    StandInService,
    assert_eventually,
    serving,
)

WHOAMI = "/farm.auth.v1.AuthService/WhoAmI"
LIST_KEYS = "/farm.auth.v1.AuthService/ListApiKeys"
# Operators only (farm_core.scopes.RPC_RULES).
UPDATE_LIMITS = "/farm.auth.v1.AuthService/UpdateTenantLimits"
AUTH_SERVICE = "farm.auth.v1.AuthService"
ECHO_SCOPES: Mapping[str, str] = {WHOAMI: ANY_IDENTITY, LIST_KEYS: "admin", UPDATE_LIMITS: "admin"}


class EchoAuth(auth_pb2_grpc.AuthServiceServicer):
    async def WhoAmI(
        self, request: auth_pb2.WhoAmIRequest, context: object
    ) -> auth_pb2.WhoAmIResponse:
        identity = current_identity()
        return auth_pb2.WhoAmIResponse(tenant=identity.tenant, key_id=identity.key_id)

    async def ListApiKeys(
        self, request: auth_pb2.ListApiKeysRequest, context: object
    ) -> auth_pb2.ListApiKeysResponse:
        raise InvalidArgument("pageSize", "too big")

    async def UpdateTenantLimits(
        self, request: auth_pb2.UpdateTenantLimitsRequest, context: object
    ) -> auth_pb2.Tenant:
        return auth_pb2.Tenant(name=request.name)


def echo_service(name: str) -> StandInService:
    return StandInService(
        name,
        ECHO_SCOPES,
        # A partial fake: the generated base answers UNIMPLEMENTED for the RPCs it leaves out.
        EchoAuth(),  # type: ignore[abstract]
        auth_pb2_grpc.add_AuthServiceServicer_to_server,
        AUTH_SERVICE,
    )


@pytest.fixture
async def channel(tmp_path: Path) -> AsyncIterator[grpc.aio.Channel]:
    settings = FarmSettings(FARM_HOME=tmp_path, FARM_IDENTITY_PUBLIC_KEY=TEST_PUBLIC_KEY)
    async with (
        serving(echo_service("echo"), settings, credentials=False) as host,
        grpc.aio.insecure_channel(host.address) as channel,
    ):
        yield channel


def token(*scopes: str, operator: bool = False) -> tuple[tuple[str, str]]:
    identity = Identity("acme", "key_1", frozenset(scopes), operator=operator)
    return ((IDENTITY_HEADER, TEST_SIGNER.encode(identity)),)


async def test_call_with_a_valid_identity_sees_it(channel: grpc.aio.Channel) -> None:
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    reply = await stub.WhoAmI(auth_pb2.WhoAmIRequest(), metadata=token())
    assert (reply.tenant, reply.key_id) == ("acme", "key_1")


async def test_call_without_identity_is_unauthenticated(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth_pb2_grpc.AuthServiceStub(channel).WhoAmI(auth_pb2.WhoAmIRequest())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_forged_identity_is_unauthenticated(channel: grpc.aio.Channel) -> None:
    forged = IdentitySigner(private_pem(new_private_key())).encode(
        Identity("acme", "k", frozenset({"admin"}))
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth_pb2_grpc.AuthServiceStub(channel).WhoAmI(
            auth_pb2.WhoAmIRequest(), metadata=((IDENTITY_HEADER, forged),)
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_missing_scope_is_permission_denied(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth_pb2_grpc.AuthServiceStub(channel).ListApiKeys(
            auth_pb2.ListApiKeysRequest(), metadata=token("tasks.read")
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "admin" in (caught.value.details() or "")


async def test_domain_error_maps_to_its_status_naming_the_field(
    channel: grpc.aio.Channel,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth_pb2_grpc.AuthServiceStub(channel).ListApiKeys(
            auth_pb2.ListApiKeysRequest(), metadata=token("admin")
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "pageSize: too big"


async def test_method_without_a_rule_is_refused(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth_pb2_grpc.AuthServiceStub(channel).RevokeApiKey(
            auth_pb2.RevokeApiKeyRequest(id="x"), metadata=token("admin")
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


@dataclass
class RevocationKeepingService(StandInService):
    """A stand-in that loads the revoked credentials itself (as auth does)."""

    revoked_credentials: RevokedCredentials = field(default_factory=RevokedCredentials)


async def test_health_is_open_and_serving_once_the_revocations_are_loaded(
    tmp_path: Path,
) -> None:
    # Until then every credential is refused as unavailable: no one should route to it.
    settings = FarmSettings(FARM_HOME=tmp_path, FARM_IDENTITY_PUBLIC_KEY=TEST_PUBLIC_KEY)
    echo = echo_service("echo")
    service = RevocationKeepingService(
        echo.name, echo.method_scopes, echo.servicer, echo.add_servicer, echo.service_name
    )
    async with (
        serving(service, settings, credentials=False) as host,
        grpc.aio.insecure_channel(host.address) as channel,
    ):
        health_stub = health_pb2_grpc.HealthStub(channel)

        async def status(name: str) -> int:
            request = health_pb2.HealthCheckRequest(service=name)
            return int((await health_stub.Check(request)).status)

        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        assert [await status(""), await status(AUTH_SERVICE)] == [not_serving, not_serving]
        service.revoked_credentials.loaded = True
        serving_status = health_pb2.HealthCheckResponse.SERVING

        async def serving_now() -> bool:
            return bool(await status(AUTH_SERVICE) == serving_status)

        await assert_eventually(serving_now, message="health never said SERVING")
        assert await status("") == serving_status


async def test_an_operator_only_rpc_refuses_an_admin_who_is_not_an_operator(
    channel: grpc.aio.Channel,
) -> None:
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    request = auth_pb2.UpdateTenantLimitsRequest(name="acme")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UpdateTenantLimits(request, metadata=token("admin"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == (
        "only an admin of the bootstrap tenant may change a tenant's quotas"
    )

    reply = await stub.UpdateTenantLimits(request, metadata=token("admin", operator=True))
    assert reply.name == "acme"


async def test_an_operator_still_needs_the_rpcs_scope(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await auth_pb2_grpc.AuthServiceStub(channel).UpdateTenantLimits(
            auth_pb2.UpdateTenantLimitsRequest(name="acme"),
            metadata=token("tasks.read", operator=True),
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "lacks the scope 'admin'" in (caught.value.details() or "")


@dataclass
class SelfStoppingService(StandInService):
    """Asks to be stopped while it starts, as an agent does on an early drain notice."""

    request_stop: Callable[[], None] = field(default=lambda: None)
    steps: list[str] = field(default_factory=list)

    async def start(self) -> None:
        self.steps.append("start")
        self.request_stop()

    async def drain(self, grace_seconds: float) -> None:
        self.steps.append("drain")

    async def close(self) -> None:
        self.steps.append("close")


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """Puts back the root logger that serve() configures for a service process."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    nats_level = logging.getLogger("nats").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("nats").setLevel(nats_level)


@pytest.mark.usefixtures("logging_restored")
async def test_serve_drains_and_closes_a_service_that_asks_to_stop(tmp_path: Path) -> None:
    settings = FarmSettings(
        FARM_HOME=tmp_path,
        FARM_IDENTITY_PUBLIC_KEY=TEST_PUBLIC_KEY,
        NATS_URL=f"nats://127.0.0.1:{free_port()}",
        FARM_GRACE_SECONDS=1,
    )
    stop_requested = asyncio.Event()
    service = SelfStoppingService(
        "echo",
        ECHO_SCOPES,
        # A partial fake: the generated base answers UNIMPLEMENTED for the RPCs it leaves out.
        EchoAuth(),  # type: ignore[abstract]
        auth_pb2_grpc.add_AuthServiceServicer_to_server,
        AUTH_SERVICE,
        request_stop=stop_requested.set,
    )
    async with asyncio.timeout(10):
        await serve(service, settings, free_port(), 0, stop_requested)
    assert service.steps == ["start", "drain", "close"]


@dataclass
class ClosingService(StandInService):
    """A stand-in that notes whether it was closed."""

    closed: bool = False

    async def close(self) -> None:
        self.closed = True


async def test_a_port_another_service_serves_fails_the_start_and_closes_the_service(
    tmp_path: Path,
) -> None:
    settings = FarmSettings(FARM_HOME=tmp_path, FARM_IDENTITY_PUBLIC_KEY=TEST_PUBLIC_KEY)
    async with serving(echo_service("first"), settings, credentials=False) as first:
        echo = echo_service("second")
        service = ClosingService(
            echo.name, echo.method_scopes, echo.servicer, echo.add_servicer, echo.service_name
        )
        second = ServiceHost(service, settings, first.port)
        with pytest.raises(OSError, match="second cannot listen"):
            await second.start()
        # What the service's start opened (browsers, connections) is not left running.
        assert service.closed
