"""The AuthService RPC handlers: validate the request, act on the key store, answer."""

import datetime as dt
from typing import Any

from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from farm_auth.credential_revocations import CredentialRevocations, RevocationRecord
from farm_auth.key_revocation_notices import KeyRevocationNotices
from farm_auth.keys import (
    KeyRecord,
    SecretHasher,
    issue_key,
    new_secret,
    refuse_outliving,
    refuse_repeat,
    validate_spec,
    validate_tenant,
)
from farm_auth.limits import (
    LimitDefaults,
    QuotaSetting,
    RateSetting,
    grace_seconds,
    quotas_proto,
    rate_setting_proto,
    updated_quotas,
    updated_rate,
)
from farm_auth.store import KeyStore, TenantRecord
from farm_auth.verifier import KeyVerifier
from farm_core.db import utcnow
from farm_core.errors import FailedPrecondition, InvalidArgument, NotFound
from farm_core.identity import Identity, current_identity, require_operator
from farm_core.revocations import RevokedBy
from farm_core.scopes import Scope
from farm_core.timestamps import to_timestamp


def api_key_message(record: KeyRecord, defaults: LimitDefaults) -> auth_pb2.ApiKey:
    """The API's view of a stored key (never its secret nor its hash)."""
    message = auth_pb2.ApiKey(
        id=record.id,
        name=record.name,
        tenant=record.tenant,
        scopes=record.scopes,
        create_time=to_timestamp(record.create_time),
        rate_limit=rate_setting_proto(record.rate_setting),
        effective_rate_limit=defaults.rate(record.rate_setting).to_proto(),
    )
    if record.expire_time is not None:
        message.expire_time.CopyFrom(to_timestamp(record.expire_time))
    if record.revoke_time is not None:
        message.revoke_time.CopyFrom(to_timestamp(record.revoke_time))
    if record.previous_secret_expire_time is not None:
        message.previous_secret_expire_time.CopyFrom(
            to_timestamp(record.previous_secret_expire_time)
        )
    return message


def tenant_message(record: TenantRecord, defaults: LimitDefaults) -> auth_pb2.Tenant:
    """The API's view of a tenant, with its quotas as set and as in force."""
    return auth_pb2.Tenant(
        name=record.name,
        limits=quotas_proto(record.quotas),
        effective_limits=quotas_proto(defaults.quotas(record.quotas)),
        create_time=to_timestamp(record.create_time),
    )


def revoked_credential_message(record: RevocationRecord) -> auth_pb2.RevokedCredential:
    """The API's view of a revocation of credentials."""
    message = auth_pb2.RevokedCredential(revoke_time=to_timestamp(record.revoke_time))
    if record.revoked_by is RevokedBy.ID:
        message.id = record.target
    else:
        message.subject = record.target
    if record.expire_time is not None:
        message.expire_time.CopyFrom(to_timestamp(record.expire_time))
    return message


def _key_id(key_id: str) -> str:
    if not key_id:
        raise InvalidArgument("id", "must be set")
    return key_id


def _tenant_name(name: str) -> str:
    if not name:
        raise InvalidArgument("name", "must be set")
    try:
        return validate_tenant(name)
    except InvalidArgument as error:
        raise InvalidArgument("name", error.message.removeprefix("tenant: ")) from error


class AuthApi(auth_pb2_grpc.AuthServiceServicer):
    """farm.auth.v1.AuthService: the caller's tenant's keys; every tenant's for the root admin."""

    def __init__(
        self,
        store: KeyStore,
        hasher: SecretHasher,
        verifier: KeyVerifier,
        bootstrap_tenant: str,
        defaults: LimitDefaults,
        rotation_grace_seconds: float,
        revocations: CredentialRevocations,
        key_revocations: KeyRevocationNotices,
    ) -> None:
        self._store = store
        self._revocations = revocations
        self._key_revocations = key_revocations
        self._hasher = hasher
        self._verifier = verifier
        self._bootstrap_tenant = bootstrap_tenant
        self._defaults = defaults
        self._rotation_grace_seconds = rotation_grace_seconds

    def _visible_tenant(self, caller: Identity) -> str | None:
        """The tenant whose keys the caller sees, or None (an operator's) for all of them."""
        return None if caller.operator else caller.tenant

    async def _caller_expiry(self, caller: Identity) -> dt.datetime | None:
        """When the caller's own key expires (None: never), looked up by its id."""
        record = await self._store.get(caller.key_id, caller.tenant)
        return record.expire_time if record is not None else None

    def _changed(self, record: KeyRecord | None, key_id: str) -> auth_pb2.ApiKey:
        """The API's view of a key just changed, dropped from Check's cache; NotFound for None."""
        if record is None:
            raise NotFound("API key", key_id)
        self._verifier.forget(record)
        return api_key_message(record, self._defaults)

    async def CreateApiKey(
        self, request: auth_pb2.CreateApiKeyRequest, context: Any
    ) -> auth_pb2.CreateApiKeyResponse:
        caller = current_identity()
        spec = validate_spec(
            request.name,
            request.scopes,
            request.tenant,
            request.ttl_seconds,
            request.idempotency_key,
        )
        tenant = spec.tenant or caller.tenant
        if tenant != caller.tenant:
            require_operator(
                caller,
                f"create keys for another tenant than {caller.tenant!r}",
                self._bootstrap_tenant,
                field="tenant",
            )
        record, secret = issue_key(spec, tenant, self._hasher, utcnow(), caller.tenant)
        # A key that expires must not mint one that outlives it: a short-lived admin
        # key would otherwise leave a permanent one behind.
        refuse_outliving(record.expire_time, await self._caller_expiry(caller), "ttlSeconds")
        earlier = await self._store.create(record)
        if earlier is not None:
            refuse_repeat(earlier, spec, tenant)
        return auth_pb2.CreateApiKeyResponse(
            api_key=api_key_message(record, self._defaults), secret=secret
        )

    async def ListApiKeys(
        self, request: auth_pb2.ListApiKeysRequest, context: Any
    ) -> auth_pb2.ListApiKeysResponse:
        records = await self._store.list(self._visible_tenant(current_identity()))
        return auth_pb2.ListApiKeysResponse(
            api_keys=[api_key_message(r, self._defaults) for r in records]
        )

    async def RevokeApiKey(
        self, request: auth_pb2.RevokeApiKeyRequest, context: Any
    ) -> auth_pb2.ApiKey:
        caller = current_identity()
        key_id = _key_id(request.id)
        record = await self._store.revoke(key_id, self._visible_tenant(caller), utcnow())
        answer = self._changed(record, key_id)
        # The sockets the key opened outlive its check at the edge: their agents end them.
        await self._key_revocations.publish(key_id)
        return answer

    async def WhoAmI(
        self, request: auth_pb2.WhoAmIRequest, context: Any
    ) -> auth_pb2.WhoAmIResponse:
        caller = current_identity()
        record = await self._store.get(caller.key_id, caller.tenant)
        rate = self._defaults.rate(record.rate_setting if record else RateSetting())
        return auth_pb2.WhoAmIResponse(
            tenant=caller.tenant,
            key_id=caller.key_id,
            scopes=sorted(caller.scopes),
            key_name=caller.key_name,
            rate_limit=rate.to_proto(),
            tenant_limits=quotas_proto(caller.quotas) if caller.quotas else None,
        )

    async def UpdateApiKey(
        self, request: auth_pb2.UpdateApiKeyRequest, context: Any
    ) -> auth_pb2.ApiKey:
        key_id = _key_id(request.id)
        # Only an operator gets here (its RPC rule): any tenant's key.
        record = await self._store.get(key_id, None)
        if record is None:
            raise NotFound("API key", key_id)
        if record.revoke_time is not None:
            raise FailedPrecondition(f"API key {key_id!r} is revoked; create a new one")
        updated = await self._store.set_rate(
            key_id, None, updated_rate(record.rate_setting, request)
        )
        if updated is None:  # revoked since it was read
            raise FailedPrecondition(f"API key {key_id!r} is revoked; create a new one")
        return self._changed(updated, key_id)

    async def RotateApiKey(
        self, request: auth_pb2.RotateApiKeyRequest, context: Any
    ) -> auth_pb2.CreateApiKeyResponse:
        caller = current_identity()
        key_id = _key_id(request.id)
        grace = dt.timedelta(seconds=grace_seconds(request, self._rotation_grace_seconds))
        tenant = self._visible_tenant(caller)
        current = await self._store.get(key_id, tenant)
        if current is None:
            raise NotFound("API key", key_id)
        if current.revoke_time is not None:
            raise FailedPrecondition(f"API key {key_id!r} is revoked; create a new one")
        # Rotating hands the caller the key's new secret: take over no key that outlives it.
        refuse_outliving(current.expire_time, await self._caller_expiry(caller), "id")
        secret = new_secret()
        record = await self._store.rotate(
            key_id, tenant, self._hasher.hash(secret), utcnow() + grace
        )
        if record is None:
            raise FailedPrecondition(f"API key {key_id!r} is revoked; create a new one")
        self._verifier.forget(record)
        # Sockets and streams opened with the old secret end as its grace does.
        await self._key_revocations.publish_secrets(record.secrets())
        return auth_pb2.CreateApiKeyResponse(
            api_key=api_key_message(record, self._defaults), secret=secret
        )

    async def GetTenant(self, request: auth_pb2.GetTenantRequest, context: Any) -> auth_pb2.Tenant:
        caller = current_identity()
        name = _tenant_name(request.name)
        may_read = name == caller.tenant or caller.operator or caller.has_scope(Scope.INTERNAL)
        if not may_read:
            raise NotFound("tenant", name)
        record = await self._store.get_tenant(name)
        if record is None:
            raise NotFound("tenant", name)
        return tenant_message(record, self._defaults)

    async def UpdateTenantLimits(
        self, request: auth_pb2.UpdateTenantLimitsRequest, context: Any
    ) -> auth_pb2.Tenant:
        name = _tenant_name(request.name)
        current = await self._store.get_tenant(name)
        setting = updated_quotas(current.quotas if current else QuotaSetting(), request)
        record = await self._store.set_quotas(name, setting, utcnow())
        return tenant_message(record, self._defaults)

    async def RevokeCredential(
        self, request: auth_pb2.RevokeCredentialRequest, context: Any
    ) -> auth_pb2.RevokedCredential:
        # Only an operator gets here (its RPC rule).
        record = await self._revocations.revoke(request.id, request.subject)
        return revoked_credential_message(record)
