"""The caller's identity as the auth service vouches for it: a short-lived signed token.

Envoy asks the auth service about every request; auth answers with this token in
the `x-farm-identity` header, signed with the farm's Ed25519 identity key, which
only auth holds. Each service verifies it with the public key, so a header forged
by an outside caller, or by a farm host without the private key, is refused.

The farm's own processes call each other with a credential in the same header: a
long-lived token auth's key signed for one agent (role `agent`: only an agent's
work), the MCP service (role `mcp`: only renewing its callers' tokens), one
service (role `service`: scope `internal`) or the web console (role `console`: no
RPC; it names its browsers' addresses to the edge's check), issued by the
launcher or by an operator, never made by the process that carries it.

A token for an API key also says when that key was last shown at the edge
(`auth_time`); auth renews a token only within a bounded time after it.

Each credential has an id (`jti`); an operator revokes one by it, or all those of a
name, through auth (farm_core.revocations), and a verifier given the revocations
refuses it from then on.
"""

import contextlib
import contextvars
import os
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from farm_core.credential_roles import DEFAULT_CREDENTIAL_DAYS as DEFAULT_CREDENTIAL_DAYS
from farm_core.credential_roles import CredentialRole as CredentialRole
from farm_core.errors import PermissionDenied, Unauthenticated, Unavailable
from farm_core.identity_keys import decode_signed, load_private_key, load_public_key
from farm_core.key_validity import KeyValidity
from farm_core.quotas import TenantQuotas
from farm_core.revocations import REVOKED_REFUSAL, RevokedCredentials, new_credential_id
from farm_core.scopes import Scope

IDENTITY_HEADER = "x-farm-identity"
TENANT_HEADER = "x-farm-tenant"
"""The tenant an agent acts for on a call (the tenant of the task it names)."""
_ISSUER = "farm-auth"
_AUDIENCE = "farm"
_ALGORITHM = "EdDSA"
# Verified tokens (and signed ones) remembered per process: a few per active API key.
REMEMBERED_TOKENS = 4096


_ROLE_SCOPES = {
    CredentialRole.AGENT: Scope.AGENT,
    CredentialRole.SERVICE: Scope.INTERNAL,
    CredentialRole.MCP: Scope.MCP,
    CredentialRole.CONSOLE: Scope.CONSOLE,
}

CONFINED_ROLES: dict[CredentialRole, str] = {
    CredentialRole.AGENT: Scope.AGENT,
    CredentialRole.MCP: Scope.MCP,
    CredentialRole.CONSOLE: Scope.CONSOLE,
}
"""Roles whose credential may call only the methods that need its own scope."""


@dataclass(frozen=True)
class Identity:
    """Who is calling: the tenant, the API key and what it may do."""

    tenant: str
    key_id: str
    scopes: frozenset[str]
    key_name: str = ""
    # An admin of the bootstrap tenant: may manage what all tenants share (the fleet).
    operator: bool = False
    # The tenant's quotas in force; None when the token carries none (no quota applies).
    quotas: TenantQuotas | None = None
    # Until when its key (and the secret shown) works; None when the token does not say.
    validity: KeyValidity | None = None

    def has_scope(self, scope: str) -> bool:
        """Whether the key carries `scope`."""
        return scope in self.scopes

    # The role of a farm process's credential; None for an API key's identity.
    role: CredentialRole | None = None

    def acting_for(self, tenant: str) -> "Identity":
        """An agent's identity on a call for `tenant` (the tenant of the task it names)."""
        return Identity(tenant or self.tenant, self.key_id, self.scopes, role=self.role)


def require_operator(
    identity: Identity, action: str, bootstrap_tenant: str = "", field: str = ""
) -> None:
    """PermissionDenied unless `identity` is an operator, the only one who may do `action`.

    The refusal names the bootstrap tenant if `bootstrap_tenant` is given, and starts
    with `field` if the request field that asked for it is given.
    """
    if identity.operator:
        return
    named = f" {bootstrap_tenant!r}" if bootstrap_tenant else ""
    refusal = f"only an admin of the bootstrap tenant{named} may {action}"
    raise PermissionDenied(f"{field}: {refusal}" if field else refusal)


@dataclass(frozen=True)
class _Verified:
    """A token verified once: its identity, expiry and, for a credential, what revokes it."""

    identity: Identity
    expires: float
    credential_id: str = ""
    subject: str = ""
    issued_at: float = 0.0


class IdentityVerifier:
    """Verifies identity tokens and credentials with the farm's public identity key.

    A token verified once is remembered by its exact text until it expires, so the
    same token on the next call costs a dictionary lookup instead of a signature check.
    With `revoked`, a credential is refused once revoked (checked on every call), and
    every credential is refused as unavailable until the revocations are loaded.
    """

    def __init__(
        self, public_key: Ed25519PublicKey | str, revoked: RevokedCredentials | None = None
    ) -> None:
        self._public_key = (
            load_public_key(public_key) if isinstance(public_key, str) else public_key
        )
        self._revoked = revoked
        # token -> what it was verified to be; least recently verified dropped first.
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    def decode(self, token: str) -> Identity:
        """Returns the identity in `token`; Unauthenticated (Unavailable: revocations unknown)."""
        verified = self._verified.get(token)
        if verified is not None and time.time() >= verified.expires:
            del self._verified[token]
            verified = None
        if verified is None:
            verified = self._decode(token)
            self._verified[token] = verified
            while len(self._verified) > REMEMBERED_TOKENS:
                self._verified.popitem(last=False)
        if verified.identity.role is not None:
            self._check_revocation(verified)
        return verified.identity

    def _check_revocation(self, credential: _Verified) -> None:
        """Unauthenticated if `credential` is revoked; Unavailable if that cannot be told yet."""
        if self._revoked is None:
            return
        if not self._revoked.loaded:
            raise Unavailable("credential revocations are not loaded yet; try again shortly")
        if self._revoked.is_revoked(
            credential.credential_id, credential.subject, credential.issued_at
        ):
            raise Unauthenticated(REVOKED_REFUSAL)

    def _decode(self, token: str) -> _Verified:
        """Checks `token`'s signature and claims: its identity and its expiry."""
        try:
            claims = decode_signed(token, self._public_key, _ISSUER, _AUDIENCE)
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"identity token refused: {error}") from error
        quota, role, key = claims.get("quota"), claims.get("role"), claims.get("key")
        if role is not None and role not in CredentialRole.__members__.values():
            raise Unauthenticated(f"identity token refused: unknown role {role!r}")
        identity = Identity(
            tenant=str(claims.get("tenant", "")),
            key_id=str(claims["sub"]),
            scopes=frozenset(str(s) for s in claims.get("scopes", [])),
            key_name=str(claims.get("name", "")),
            operator=claims.get("op") is True,
            quotas=TenantQuotas.from_claims(quota) if isinstance(quota, dict) else None,
            role=CredentialRole(role) if role is not None else None,
            validity=KeyValidity.from_claims(key) if isinstance(key, dict) else None,
        )
        if role is None:
            return _Verified(identity, float(claims["exp"]))
        issued_at = claims.get("iat")
        return _Verified(
            identity,
            float(claims["exp"]),
            credential_id=str(claims.get("jti", "")),
            subject=identity.key_id,
            issued_at=float(issued_at) if isinstance(issued_at, int | float) else 0.0,
        )

    def decode_for_renewal(self, token: str) -> "RenewableIdentity":
        """The identity in `token`, its signature checked but not its expiry; Unauthenticated.

        A farm process's credential is refused: only an API key's identity is renewed.
        """
        try:
            claims = decode_signed(token, self._public_key, _ISSUER, _AUDIENCE, check_expiry=False)
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"identity token refused: {error}") from error
        if claims.get("role") is not None:
            raise Unauthenticated("identity token refused: a credential is never renewed")
        shown = claims.get("auth_time", claims.get("iat"))
        if not isinstance(shown, int | float):
            raise Unauthenticated("identity token refused: it does not say when it was issued")
        identity = Identity(
            tenant=str(claims.get("tenant", "")),
            key_id=str(claims["sub"]),
            scopes=frozenset(str(s) for s in claims.get("scopes", [])),
            key_name=str(claims.get("name", "")),
        )
        return RenewableIdentity(identity, float(shown))


@dataclass(frozen=True)
class RenewableIdentity:
    """An API key's identity read from a token, and when the key was last shown at the edge."""

    identity: Identity
    shown_at: float


class IdentitySigner(IdentityVerifier):
    """Signs identity tokens and credentials with the private identity key (auth's alone).

    A token signed for an identity is handed out again for the same identity for up
    to `reuse_seconds` (at most half its lifetime), so every token handed out still
    has at least `ttl_seconds - reuse_seconds` to live, and a busy key costs one
    signature per `reuse_seconds` instead of one per request.
    """

    def __init__(
        self,
        private_key: Ed25519PrivateKey | str,
        ttl_seconds: float = 60.0,
        reuse_seconds: float = 0.0,
    ) -> None:
        key = load_private_key(private_key) if isinstance(private_key, str) else private_key
        super().__init__(key.public_key())
        self._private_key = key
        self._ttl_seconds = ttl_seconds
        self._reuse_seconds = min(reuse_seconds, ttl_seconds / 2)
        # identity -> (token, signed at, as a monotonic time).
        self._signed: OrderedDict[Identity, tuple[str, float]] = OrderedDict()

    def encode(self, identity: Identity) -> str:
        """Returns a token that vouches for `identity` for about the next ttl seconds."""
        if self._reuse_seconds <= 0:
            return self._sign(identity)
        signed = self._signed.get(identity)
        now = time.monotonic()
        if signed is not None and now - signed[1] < self._reuse_seconds:
            return signed[0]
        token = self._sign(identity)
        self._signed.pop(identity, None)
        self._signed[identity] = (token, now)
        while len(self._signed) > REMEMBERED_TOKENS:
            self._signed.popitem(last=False)
        return token

    def renew(self, identity: Identity, shown_at: float) -> tuple[str, float]:
        """A new token for `identity` whose key was last shown at `shown_at`; and its expiry."""
        token = self._sign(identity, shown_at)
        return token, float(int(time.time() + self._ttl_seconds))

    def _sign(self, identity: Identity, shown_at: float | None = None) -> str:
        """A new token for `identity`, good for ttl seconds from now.

        `shown_at` (a Unix time) is when its key was last shown at the edge: now
        unless the token renews an earlier one.
        """
        now = time.time()
        claims: dict[str, object] = {
            "iss": _ISSUER,
            "aud": _AUDIENCE,
            "sub": identity.key_id,
            "tenant": identity.tenant,
            "scopes": sorted(identity.scopes),
            "name": identity.key_name,
            "op": identity.operator,
            "iat": int(now),
            "exp": int(now + self._ttl_seconds),
            "auth_time": int(now if shown_at is None else shown_at),
        }
        if identity.quotas is not None:
            claims["quota"] = identity.quotas.to_claims()
        if identity.validity is not None:
            claims["key"] = identity.validity.to_claims()
        return jwt.encode(claims, self._private_key, algorithm=_ALGORITHM)

    def credential(
        self, role: CredentialRole, name: str, lifetime_days: float = DEFAULT_CREDENTIAL_DAYS
    ) -> str:
        """A credential for the farm process `name` in `role`, good for `lifetime_days`.

        Its id (credential_id) is what revokes it alone.
        """
        now = time.time()
        expires = int(now + lifetime_days * 86400)
        claims = {
            "jti": new_credential_id(expires),
            "iss": _ISSUER,
            "aud": _AUDIENCE,
            "sub": f"{role.value}:{name}",
            "tenant": "",
            "role": role.value,
            "scopes": [_ROLE_SCOPES[role].value],
            "iat": int(now),
            "exp": expires,
        }
        return jwt.encode(claims, self._private_key, algorithm=_ALGORITHM)


def _unchecked_claims(token: str) -> dict[str, object]:
    """The claims `token` makes, its signature not verified; none for text that is not a token."""
    try:
        claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims


def credential_id(token: str) -> str:
    """The id a credential claims, unchecked (its signature is not verified): '' if none."""
    return str(_unchecked_claims(token).get("jti", ""))


def token_expiry(token: str) -> float:
    """The expiry (a Unix time) `token` claims, unchecked: for a token verified where it came from.

    0 for text that is not a token.
    """
    expiry = _unchecked_claims(token).get("exp")
    return float(expiry) if isinstance(expiry, int | float) else 0.0


_current_identity: contextvars.ContextVar[Identity] = contextvars.ContextVar("farm_identity")


def current_identity() -> Identity:
    """The identity of the RPC being handled, as checked by the identity interceptor."""
    try:
        return _current_identity.get()
    except LookupError as error:
        raise Unauthenticated("no identity on this call") from error


def set_current_identity(identity: Identity) -> contextvars.Token[Identity]:
    """Binds `identity` to the running RPC; returns the token to reset it."""
    return _current_identity.set(identity)


def reset_current_identity(token: contextvars.Token[Identity]) -> None:
    """Undoes set_current_identity."""
    _current_identity.reset(token)


def load_or_create_secret(path: Path) -> str:
    """Reads the shared secret from `path`, writing a new random one (mode 0600) if absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        draft.write_text(secrets.token_urlsafe(48))
        draft.chmod(0o600)
        # link() fails if another process won the race; then its secret stands.
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    return path.read_text().strip()


def carry_over_secret(source: Path, path: Path) -> str:
    """Writes `source`'s secret to `path` (mode 0600) unless `path` exists; returns `path`'s."""
    if not path.exists():
        draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        draft.write_text(source.read_text().strip())
        draft.chmod(0o600)
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    return path.read_text().strip()
