"""Upload grants: the scheduler's signed word that an agent was handed a task or a session.

The scheduler puts a grant in each WorkItem it publishes and in each OpenSessionOrder
it sends; the agent shows it with every upload (UploadHeader.grant) and every event
(AgentEvent.grant). Storage stores an artifact only under the task or session and the
tenant its grant names, and the scheduler applies an event only with the grant of its
task: an agent's credential alone uploads nothing. A grant also carries the tenant's
artifact byte quota, so storage learns it without asking auth.

Grants are signed with the scheduler's own Ed25519 key (not auth's identity key):
storage holds only its public half. A grant is not an identity: its issuer and
audience differ, and it is verified with another key.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import SecretStr

from farm_core.errors import PermissionDenied
from farm_core.identity_keys import (
    decode_signed,
    load_or_create_private_key,
    load_private_key,
    load_public_key,
    private_pem,
    public_pem,
)

GRANT_KEY_FILE = "grant-key"
"""The scheduler's grant signing key under FARM_HOME (mode 0600) on a one-machine farm."""
_ISSUER = "farm-scheduler"
_AUDIENCE = "farm-grant"
_ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class UploadGrant:
    """What a grant vouches for: the owner (a task's or a session's id), its tenant, a quota."""

    owner_id: str
    tenant: str
    # The tenant's maxArtifactBytes when the grant was made; 0 is unlimited.
    max_artifact_bytes: int = 0
    # When it stops being valid, in seconds since the epoch (0: not read from a token).
    expire_time: float = 0.0


class GrantVerifier:
    """Checks grants with the public half of the scheduler's grant key."""

    def __init__(self, public_key: Ed25519PublicKey | str) -> None:
        self._public_key = (
            load_public_key(public_key) if isinstance(public_key, str) else public_key
        )

    def read(self, grant: str, field: str) -> UploadGrant:
        """What a valid `grant` vouches for; PermissionDenied naming `field` otherwise."""
        if not grant:
            raise PermissionDenied(f"{field}: must be the grant the task or session came with")
        try:
            claims = decode_signed(grant, self._public_key, _ISSUER, _AUDIENCE)
        except jwt.PyJWTError as error:
            raise PermissionDenied(f"{field}: grant refused: {error}") from error
        return UploadGrant(
            owner_id=str(claims["sub"]),
            tenant=str(claims.get("tenant", "")),
            max_artifact_bytes=_quota(claims.get("maxArtifactBytes")),
            expire_time=float(claims["exp"]),
        )

    def verify(self, grant: str, owner_id: str, tenant: str, field: str) -> UploadGrant:
        """The grant for `owner_id` of `tenant`; PermissionDenied naming `field` otherwise."""
        granted = self.read(grant, field)
        if granted.owner_id != owner_id or granted.tenant != tenant:
            raise PermissionDenied(
                f"{field}: the grant is for {granted.owner_id!r} of tenant {granted.tenant!r}, "
                f"not {owner_id!r} of tenant {tenant!r}"
            )
        return granted


class GrantSigner(GrantVerifier):
    """Signs grants with the scheduler's private grant key."""

    def __init__(self, private_key: Ed25519PrivateKey | str) -> None:
        key = load_private_key(private_key) if isinstance(private_key, str) else private_key
        super().__init__(key.public_key())
        self._private_key = key

    def sign(self, grant: UploadGrant, lifetime_seconds: float) -> str:
        """A grant good for `lifetime_seconds` from now."""
        now = time.time()
        claims: dict[str, object] = {
            "iss": _ISSUER,
            "aud": _AUDIENCE,
            "sub": grant.owner_id,
            "tenant": grant.tenant,
            "iat": int(now),
            "exp": int(now + lifetime_seconds),
        }
        if grant.max_artifact_bytes:
            claims["maxArtifactBytes"] = grant.max_artifact_bytes
        return jwt.encode(claims, self._private_key, algorithm=_ALGORITHM)


def _quota(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def resolve_grant_key(given: SecretStr | None, home: Path) -> str:
    """The scheduler's private grant key (PEM): `given`, or FARM_HOME's file (made if absent)."""
    if given is not None:
        return given.get_secret_value()
    return private_pem(load_or_create_private_key(home / GRANT_KEY_FILE))


def resolve_grant_public_key(given: str | None, home: Path) -> str:
    """The grant key's public half (PEM): `given`, or that of FARM_HOME's key pair."""
    if given is not None:
        return given
    return public_pem(load_or_create_private_key(home / GRANT_KEY_FILE))
