"""API keys as a domain: new secrets and ids, keyed hashes, request rules, why a key is refused."""

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NoReturn

from farm_auth.limits import QuotaSetting, RateSetting
from farm_core.errors import AlreadyExists, InvalidArgument, PermissionDenied, Unauthenticated
from farm_core.idempotency import check_idempotency_key, used_otherwise
from farm_core.identity import Identity
from farm_core.key_limits import MAX_TTL_SECONDS
from farm_core.key_validity import KeySecrets, KeyValidity
from farm_core.quotas import TenantQuotas
from farm_core.scopes import PUBLIC_SCOPES, Scope

SECRET_PREFIX = "bf_"
BOOTSTRAP_KEY_NAME = "bootstrap-admin"
MAX_NAME_CHARS = 100
TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")

MISSING_KEY = "missing API key: send authorization: Bearer <key>"
NOT_BEARER = "authorization must use the Bearer scheme: send authorization: Bearer <key>"
UNKNOWN_KEY = "unknown API key"
REVOKED_KEY = "API key revoked"
EXPIRED_KEY = "API key expired"
ROTATED_KEY = "API key rotated: this old secret's grace period is over; use the new secret"


def new_secret() -> str:
    """A fresh API key secret; it is shown to its owner once and never stored."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    """A fresh API key id: `key_` and 16 hex digits."""
    return f"key_{secrets.token_hex(8)}"


def secret_fingerprint(secret_hash: str) -> str:
    """What names a key's secret to other processes: 16 hex digits of a hash of its hash.

    It tells two secrets of a key apart, and says nothing of the secret or its stored hash.
    """
    return hashlib.sha256(f"farm-secret:{secret_hash}".encode()).hexdigest()[:16]


class SecretHasher:
    """Keyed hashes of secrets (HMAC-SHA256 with a pepper), so a leaked table reveals no key."""

    def __init__(self, pepper: str) -> None:
        if not pepper:
            raise ValueError("the pepper must not be empty")
        self._pepper = pepper.encode()

    def hash(self, secret: str) -> str:
        """The stored form of `secret`: 64 hex digits, the same for the same secret."""
        return hmac.new(self._pepper, secret.encode(), hashlib.sha256).hexdigest()

    def matches(self, secret: str, secret_hash: str) -> bool:
        """Whether `secret` hashes to `secret_hash`, in time that does not depend on where."""
        return hmac.compare_digest(self.hash(secret), secret_hash)


@dataclass(frozen=True)
class KeyRecord:
    """An API key as stored: everything but its secret, of which only the hash is kept."""

    id: str
    tenant: str
    name: str
    scopes: tuple[str, ...]
    secret_hash: str
    create_time: dt.datetime
    expire_time: dt.datetime | None = None
    revoke_time: dt.datetime | None = None
    rate_per_second: int | None = None
    rate_burst: int | None = None
    # The secret before the last rotation, and until when it still works.
    previous_secret_hash: str | None = None
    previous_secret_expire_time: dt.datetime | None = None
    # The CreateApiKey's idempotency key, and the tenant of the caller that sent it.
    idempotency_tenant: str | None = None
    idempotency_key: str | None = None
    # The quotas its tenant has set, when looked up with the key (not a column of it).
    tenant_quotas: QuotaSetting = field(default_factory=QuotaSetting, compare=False)

    @property
    def rate_setting(self) -> RateSetting:
        """The key's own rate limit setting."""
        return RateSetting(self.rate_per_second, self.rate_burst)

    def identity(
        self, bootstrap_tenant: str, quotas: TenantQuotas | None = None, secret_hash: str = ""
    ) -> Identity:
        """Who a request made with this key is; an admin of `bootstrap_tenant` is an operator.

        With the `secret_hash` of the secret shown, it says until when key and secret work.
        """
        return Identity(
            self.tenant,
            self.id,
            frozenset(self.scopes),
            self.name,
            operator=self.tenant == bootstrap_tenant and Scope.ADMIN in self.scopes,
            quotas=quotas,
            validity=self.validity(secret_hash) if secret_hash else None,
        )

    def validity(self, secret_hash: str = "") -> KeyValidity:
        """Until when the key, and the secret hashing to `secret_hash` if given, work."""
        expires = self.expire_time.timestamp() if self.expire_time is not None else None
        if not secret_hash:
            return KeyValidity(key_expires=expires)
        grace_end = self.previous_secret_expire_time
        secret_expires = None
        if secret_hash != self.secret_hash:
            secret_expires = grace_end.timestamp() if grace_end is not None else 0.0
        return KeyValidity(secret_fingerprint(secret_hash), expires, secret_expires)

    def validity_of(self, fingerprint: str) -> KeyValidity:
        """Until when the key and its secret named by `fingerprint` work (at once: gone)."""
        for secret_hash in (self.secret_hash, self.previous_secret_hash):
            if secret_hash and secret_fingerprint(secret_hash) == fingerprint:
                return self.validity(secret_hash)
        expires = self.expire_time.timestamp() if self.expire_time is not None else None
        # Neither of its working secrets: rotated out by a second rotation.
        return KeyValidity(fingerprint, expires, 0.0)

    def secrets(self) -> KeySecrets:
        """The secrets that work (named by fingerprint): the notice of a change of them."""
        grace_end = self.previous_secret_expire_time
        previous = self.previous_secret_hash if grace_end is not None else None
        return KeySecrets(
            self.id,
            secret_fingerprint(self.secret_hash),
            secret_fingerprint(previous) if previous else "",
            grace_end.timestamp() if grace_end is not None and previous else 0.0,
        )


@dataclass(frozen=True)
class KeySpec:
    """A validated CreateApiKey request; an empty tenant means the caller's."""

    name: str
    scopes: tuple[str, ...]
    tenant: str
    lifetime: dt.timedelta | None
    idempotency_key: str = ""


class KeyRefused(Unauthenticated):
    """A request's key is missing or not valid; `outcome` names why, for metrics."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def refusal(
    record: KeyRecord, now: dt.datetime, secret_hash: str | None = None
) -> KeyRefused | None:
    """Why `record` may not be used at `now` with the secret hashing to `secret_hash`, or None.

    A `secret_hash` other than the key's current one is its previous secret,
    valid until the rotation's grace period ends.
    """
    if record.revoke_time is not None:
        return KeyRefused("revoked", REVOKED_KEY)
    if record.expire_time is not None and record.expire_time <= now:
        return KeyRefused("expired", EXPIRED_KEY)
    if secret_hash is not None and secret_hash != record.secret_hash:
        grace_end = record.previous_secret_expire_time
        if secret_hash != record.previous_secret_hash or grace_end is None or grace_end <= now:
            return KeyRefused("rotated", ROTATED_KEY)
    return None


def validate_name(name: str) -> str:
    """The key's name, 1 to 100 characters, not only blanks."""
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise InvalidArgument("name", f"must be 1 to {MAX_NAME_CHARS} characters, got {len(name)}")
    if not name.strip():
        raise InvalidArgument("name", "must not be only blanks")
    if name == BOOTSTRAP_KEY_NAME:
        raise InvalidArgument("name", f"{name!r} is reserved for the key FARM_ADMIN_KEY sets")
    return name


def validate_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """At least one public scope, none twice, in the order given."""
    listed = tuple(scopes)
    if not listed:
        raise InvalidArgument("scopes", f"must name at least one of {_public_scopes()}")
    for scope in listed:
        if scope not in PUBLIC_SCOPES:
            raise InvalidArgument("scopes", f"unknown scope {scope!r}; one of {_public_scopes()}")
    repeated = sorted({scope for scope in listed if listed.count(scope) > 1})
    if repeated:
        raise InvalidArgument("scopes", f"{repeated[0]!r} is listed more than once")
    return listed


def validate_ttl(ttl_seconds: int) -> dt.timedelta | None:
    """The key's lifetime: None (never expires) for 0, else 1 s to 10 years."""
    if not 0 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise InvalidArgument(
            "ttlSeconds",
            f"must be between 0 (never expires) and {MAX_TTL_SECONDS} (10 years), "
            f"got {ttl_seconds}",
        )
    return dt.timedelta(seconds=ttl_seconds) if ttl_seconds else None


def validate_tenant(tenant: str) -> str:
    """A tenant name (lower-case letters, digits, '-'; up to 63), or '' for the caller's."""
    if tenant and not TENANT_PATTERN.fullmatch(tenant):
        raise InvalidArgument(
            "tenant",
            f"must be 1 to 63 lower-case letters, digits or '-', starting with a letter "
            f"or digit, got {tenant!r}",
        )
    return tenant


def validate_spec(
    name: str, scopes: Iterable[str], tenant: str, ttl_seconds: int, idempotency_key: str = ""
) -> KeySpec:
    """The CreateApiKey request's fields checked, each error naming its field."""
    return KeySpec(
        name=validate_name(name),
        scopes=validate_scopes(scopes),
        tenant=validate_tenant(tenant),
        lifetime=validate_ttl(ttl_seconds),
        idempotency_key=check_idempotency_key(idempotency_key),
    )


def issue_key(
    spec: KeySpec, tenant: str, hasher: SecretHasher, now: dt.datetime, caller_tenant: str = ""
) -> tuple[KeyRecord, str]:
    """A new key of `tenant` from `spec` asked for by `caller_tenant`, and its secret.

    The secret is not in the record; its idempotency key, if any, is, as `caller_tenant`'s.
    """
    secret = new_secret()
    record = KeyRecord(
        id=new_key_id(),
        tenant=tenant,
        name=spec.name,
        scopes=spec.scopes,
        secret_hash=hasher.hash(secret),
        create_time=now,
        expire_time=now + spec.lifetime if spec.lifetime is not None else None,
        idempotency_tenant=(caller_tenant or tenant) if spec.idempotency_key else None,
        idempotency_key=spec.idempotency_key or None,
    )
    return record, secret


def refuse_repeat(earlier: KeyRecord, spec: KeySpec, tenant: str) -> NoReturn:
    """Refuses a create of `spec` for `tenant` whose idempotency key `earlier` holds.

    As tasks' idempotencyKey, the key names one request: the same request (name,
    scopes, tenant, lifetime) gets AlreadyExists naming the key it made (its secret
    was in the first answer only and is not stored, so it cannot be answered again);
    another request gets InvalidArgument naming idempotencyKey.
    """
    lifetime = earlier.expire_time - earlier.create_time if earlier.expire_time else None
    asked = (spec.name, set(spec.scopes), tenant, spec.lifetime)
    if (earlier.name, set(earlier.scopes), earlier.tenant, lifetime) != asked:
        raise used_otherwise(spec.idempotency_key, f"API key {earlier.id}")
    created = earlier.create_time.isoformat(timespec="seconds")
    raise AlreadyExists(
        f"API key {earlier.id!r} was already created at {created} by this request "
        f"(idempotencyKey {spec.idempotency_key!r}); its secret was shown only then"
    )


def refuse_outliving(
    expire_time: dt.datetime | None, caller_expire_time: dt.datetime | None, field: str
) -> None:
    """PermissionDenied if a key expiring at `expire_time` would outlive the caller's key."""
    if caller_expire_time is None:
        return
    if expire_time is None or expire_time > caller_expire_time:
        until = caller_expire_time.isoformat(timespec="seconds")
        raise PermissionDenied(
            f"{field}: the calling key expires at {until}; it may not create or rotate "
            "a key that outlives it"
        )


def _public_scopes() -> str:
    return ", ".join(sorted(PUBLIC_SCOPES))
