"""The caller's identity as the auth service vouches for it: a short-lived signed token.

Envoy asks the auth service about every request; auth answers with this token in
the `x-farm-identity` header, and each service verifies it with the shared secret,
so a header forged by an outside caller is refused.
"""

import contextlib
import contextvars
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from farm_core.errors import PermissionDenied, Unauthenticated
from farm_core.quotas import TenantQuotas
from farm_core.scopes import Scope

IDENTITY_HEADER = "x-farm-identity"
_ISSUER = "farm-auth"
_AUDIENCE = "farm"
_ALGORITHM = "HS256"


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

    def has_scope(self, scope: str) -> bool:
        """Whether the key carries `scope`."""
        return scope in self.scopes

    @classmethod
    def internal(cls, tenant: str, caller: str) -> "Identity":
        """A farm part (`caller`: an agent's id, "storage") acting for `tenant`: scope internal."""
        return cls(tenant=tenant, key_id=caller, scopes=frozenset({Scope.INTERNAL.value}))


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


class IdentityCodec:
    """Signs and verifies identity tokens with a secret shared by the farm's services."""

    def __init__(self, secret: str, ttl_seconds: float = 60.0) -> None:
        if len(secret) < 32:
            raise ValueError("the identity secret must be at least 32 characters")
        self._secret = secret
        self._ttl_seconds = ttl_seconds

    def encode(self, identity: Identity) -> str:
        """Returns a token that vouches for `identity` for the next ttl seconds."""
        now = time.time()
        claims = {
            "iss": _ISSUER,
            "aud": _AUDIENCE,
            "sub": identity.key_id,
            "tenant": identity.tenant,
            "scopes": sorted(identity.scopes),
            "name": identity.key_name,
            "op": identity.operator,
            "iat": int(now),
            "exp": int(now + self._ttl_seconds),
        }
        if identity.quotas is not None:
            claims["quota"] = identity.quotas.to_claims()
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def decode(self, token: str) -> Identity:
        """Returns the identity in `token`, or raises Unauthenticated."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                issuer=_ISSUER,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"identity token refused: {error}") from error
        quota = claims.get("quota")
        return Identity(
            tenant=str(claims["tenant"]),
            key_id=str(claims["sub"]),
            scopes=frozenset(str(s) for s in claims.get("scopes", [])),
            key_name=str(claims.get("name", "")),
            operator=claims.get("op") is True,
            quotas=TenantQuotas.from_claims(quota) if isinstance(quota, dict) else None,
        )


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
