"""The AuthService RPC handlers: validate the request, act on the key store, answer."""

from typing import Any

from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from farm_auth.keys import KeyRecord, SecretHasher, issue_key, validate_spec
from farm_auth.store import KeyStore
from farm_auth.verifier import KeyVerifier
from farm_core.db import utcnow
from farm_core.errors import InvalidArgument, NotFound, PermissionDenied
from farm_core.identity import Identity, current_identity
from farm_core.scopes import Scope
from farm_core.timestamps import to_timestamp


def api_key_message(record: KeyRecord) -> auth_pb2.ApiKey:
    """The API's view of a stored key (never its secret nor its hash)."""
    message = auth_pb2.ApiKey(
        id=record.id,
        name=record.name,
        tenant=record.tenant,
        scopes=record.scopes,
        create_time=to_timestamp(record.create_time),
    )
    if record.expire_time is not None:
        message.expire_time.CopyFrom(to_timestamp(record.expire_time))
    if record.revoke_time is not None:
        message.revoke_time.CopyFrom(to_timestamp(record.revoke_time))
    return message


class AuthApi(auth_pb2_grpc.AuthServiceServicer):
    """farm.auth.v1.AuthService: the caller's tenant's keys; every tenant's for the root admin."""

    def __init__(
        self,
        store: KeyStore,
        hasher: SecretHasher,
        verifier: KeyVerifier,
        bootstrap_tenant: str,
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._verifier = verifier
        self._bootstrap_tenant = bootstrap_tenant

    def _manages_every_tenant(self, caller: Identity) -> bool:
        return caller.tenant == self._bootstrap_tenant and caller.has_scope(Scope.ADMIN)

    def _visible_tenant(self, caller: Identity) -> str | None:
        """The tenant whose keys the caller sees, or None for all of them."""
        return None if self._manages_every_tenant(caller) else caller.tenant

    async def CreateApiKey(
        self, request: auth_pb2.CreateApiKeyRequest, context: Any
    ) -> auth_pb2.CreateApiKeyResponse:
        caller = current_identity()
        spec = validate_spec(request.name, request.scopes, request.tenant, request.ttl_seconds)
        tenant = spec.tenant or caller.tenant
        if tenant != caller.tenant and not self._manages_every_tenant(caller):
            raise PermissionDenied(
                f"tenant: only an admin of the bootstrap tenant {self._bootstrap_tenant!r} "
                f"may create keys for another tenant than {caller.tenant!r}"
            )
        record, secret = issue_key(spec, tenant, self._hasher, utcnow())
        await self._store.create(record)
        return auth_pb2.CreateApiKeyResponse(api_key=api_key_message(record), secret=secret)

    async def ListApiKeys(
        self, request: auth_pb2.ListApiKeysRequest, context: Any
    ) -> auth_pb2.ListApiKeysResponse:
        records = await self._store.list(self._visible_tenant(current_identity()))
        return auth_pb2.ListApiKeysResponse(api_keys=[api_key_message(r) for r in records])

    async def RevokeApiKey(
        self, request: auth_pb2.RevokeApiKeyRequest, context: Any
    ) -> auth_pb2.ApiKey:
        if not request.id:
            raise InvalidArgument("id", "must be set")
        caller = current_identity()
        record = await self._store.revoke(request.id, self._visible_tenant(caller), utcnow())
        if record is None:
            raise NotFound("API key", request.id)
        self._verifier.forget(record)
        return api_key_message(record)

    async def WhoAmI(
        self, request: auth_pb2.WhoAmIRequest, context: Any
    ) -> auth_pb2.WhoAmIResponse:
        caller = current_identity()
        return auth_pb2.WhoAmIResponse(
            tenant=caller.tenant,
            key_id=caller.key_id,
            scopes=sorted(caller.scopes),
            key_name=caller.key_name,
        )
