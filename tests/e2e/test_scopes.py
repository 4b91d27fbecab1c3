"""Every public RPC, called through Envoy: a key without its scope is refused, one with it is not.

The RPCs come from the generated descriptors and their scopes from the one table
(farm_core.scopes.RPC_RULES). The ingest and identity renewal services are left out:
Envoy does not route them (agents call storage, and the MCP service calls auth,
directly, with a credential no API key can carry).
The calls carry requests that fail validation or name nothing, so nothing changes.
"""

import importlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor

import farm
from farm.auth.v1 import auth_pb2
from farm.sessions.v1 import sessions_pb2
from farm_core.scopes import ANY_IDENTITY, PUBLIC_SCOPES, RPC_RULES
from tests.e2e.conftest import KeyFactory

pytestmark = pytest.mark.e2e

INTERNAL_SERVICES = {
    "farm.storage.v1.ArtifactIngestService",
    "farm.auth.v1.IdentityRenewalService",
}
REFUSED = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED}


def public_methods() -> Iterator[MethodDescriptor]:
    """Every RPC of the farm.*.v1 services Envoy serves."""
    for root in map(Path, farm.__path__):
        for path in sorted(root.rglob("*_pb2.py")):
            module = importlib.import_module(
                ".".join(("farm", *path.relative_to(root).with_suffix("").parts))
            )
            for service in module.DESCRIPTOR.services_by_name.values():
                if service.full_name not in INTERNAL_SERVICES:
                    yield from service.methods


def full_name(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


METHODS = sorted(public_methods(), key=full_name)


# Requests whose empty form would change something: each fails validation instead.
INVALID_REQUESTS = {
    # An empty one opens a session, which would hold an agent's place until it idles out.
    "/farm.sessions.v1.SessionService/CreateSession": sessions_pb2.CreateSessionRequest(
        spec=sessions_pb2.SessionSpec(region="Not A Region")
    ),
}


def call(channel: grpc.Channel, method: MethodDescriptor, key: str) -> grpc.StatusCode:
    """Calls `method` with an empty (or invalid) request and `key`; the status it ends with."""
    request_class = message_factory.GetMessageClass(method.input_type)
    request = INVALID_REQUESTS.get(full_name(method)) or request_class()
    response_class = message_factory.GetMessageClass(method.output_type)
    options = {
        "request_serializer": request_class.SerializeToString,
        "response_deserializer": response_class.FromString,
    }
    metadata = (("authorization", f"Bearer {key}"),)
    try:
        if method.server_streaming:
            stream = channel.unary_stream(full_name(method), **options)
            for _ in stream(request, metadata=metadata, timeout=10):
                break
        else:
            channel.unary_unary(full_name(method), **options)(
                request, metadata=metadata, timeout=10
            )
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


class ScopedKeys:
    """One key per scope set, made once: of the bootstrap tenant, so no tenant rule interferes."""

    def __init__(self, make_key: KeyFactory) -> None:
        self._make_key = make_key
        self._keys: dict[frozenset[str], auth_pb2.CreateApiKeyResponse] = {}

    def secret(self, scopes: frozenset[str]) -> str:
        if scopes not in self._keys:
            self._keys[scopes] = self._make_key(*sorted(scopes))
        return self._keys[scopes].secret


@pytest.fixture(scope="module")
def scoped_keys(make_key: KeyFactory) -> ScopedKeys:
    return ScopedKeys(make_key)


def test_every_public_rpc_is_covered() -> None:
    assert len(METHODS) >= 20
    assert all(full_name(m) in RPC_RULES for m in METHODS)


@pytest.mark.parametrize("method", METHODS, ids=full_name)
def test_a_key_without_the_rpcs_scope_is_refused_and_one_with_it_is_let_through(
    method: MethodDescriptor, channel: grpc.Channel, scoped_keys: ScopedKeys
) -> None:
    required = RPC_RULES[full_name(method)].scope
    if required == ANY_IDENTITY:
        # Any key will do: the one with the fewest rights is let through.
        assert call(channel, method, scoped_keys.secret(frozenset({"tasks.read"}))) not in REFUSED
        return
    lacking = scoped_keys.secret(frozenset(PUBLIC_SCOPES - {required}))
    holding = scoped_keys.secret(frozenset({required}))

    assert call(channel, method, lacking) == grpc.StatusCode.PERMISSION_DENIED
    let_through = call(channel, method, holding)
    assert let_through not in REFUSED
    if full_name(method) in INVALID_REQUESTS:
        assert let_through == grpc.StatusCode.INVALID_ARGUMENT
