"""Revoked credentials of farm processes: what auth publishes and every verifier refuses.

A credential is revoked by its id (the `jti` claim: that one credential, until it
would have expired) or by its subject (`agent:NAME`: every credential issued to
that name up to the moment of revocation, credentials without an id included).
Auth keeps revocations in SQL and publishes each to the key-value bucket
REVOKED_CREDENTIALS_BUCKET; the services that accept credentials watch it and hold
its entries here, in memory.
"""

import asyncio
import base64
import binascii
import json
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

REVOKED_CREDENTIALS_BUCKET = "farm_revoked_credentials"
REVOKED_REFUSAL = "credential revoked"
# `cred_<expiry, Unix seconds>_<random>`: the id says how long a revocation of it matters.
_CREDENTIAL_ID = re.compile(r"^cred_([0-9]{1,12})_[0-9a-f]{24}$")


def new_credential_id(expires: int) -> str:
    """A new credential id for a credential that expires at `expires` (Unix seconds)."""
    return f"cred_{expires}_{secrets.token_hex(12)}"


def credential_id_expiry(credential_id: str) -> float | None:
    """When the credential `credential_id` expires, as its id says; None for no such id."""
    match = _CREDENTIAL_ID.match(credential_id)
    return float(match.group(1)) if match else None


class RevokedBy(StrEnum):
    """What a revocation names: one credential, or every credential issued to one subject."""

    ID = "id"
    SUBJECT = "subject"


@dataclass(frozen=True)
class Revocation:
    """One revocation, as published on the bucket.

    `until` is, for an id, when the credential would have expired (after that the
    entry is moot); for a subject, the Unix time up to which credentials issued to it
    are refused.
    """

    by: RevokedBy
    target: str
    until: float

    @property
    def key(self) -> str:
        """The bucket key: `id.<credential id>` or `subject.<subject, base64url>`."""
        if self.by is RevokedBy.ID:
            return f"id.{self.target}"
        encoded = base64.urlsafe_b64encode(self.target.encode()).decode().rstrip("=")
        return f"subject.{encoded}"

    def encode(self) -> bytes:
        """The entry's value."""
        return json.dumps(
            {"by": self.by.value, "target": self.target, "until": self.until}
        ).encode()

    @staticmethod
    def decode(value: bytes) -> "Revocation":
        """Reads an entry's value; ValueError if it is not a revocation."""
        try:
            fields = json.loads(value)
            return Revocation(
                RevokedBy(fields["by"]), str(fields["target"]), float(fields["until"])
            )
        except (KeyError, TypeError, json.JSONDecodeError, binascii.Error) as error:
            raise ValueError(f"not a revocation: {error}") from error


class RevokedCredentials:
    """The revocations in force in this process; refuses nothing until `loaded`.

    Until the first full read of the revocations (from the bucket, or auth's SQL),
    `loaded` is False and a verifier refuses every credential as unavailable: a
    service that restarted while NATS was away must not take a revoked one meanwhile.
    """

    def __init__(self) -> None:
        self._ids: dict[str, float] = {}
        self._subjects: dict[str, float] = {}
        self._loaded = asyncio.Event()

    @property
    def loaded(self) -> bool:
        """Whether every revocation in force has been read once."""
        return self._loaded.is_set()

    @loaded.setter
    def loaded(self, value: bool) -> None:
        if value:
            self._loaded.set()
        else:
            self._loaded.clear()

    async def until_loaded(self) -> None:
        """Returns once `loaded`."""
        await self._loaded.wait()

    def add(self, revocation: Revocation) -> None:
        """Records `revocation` (a later one for the same subject widens it)."""
        if revocation.by is RevokedBy.ID:
            self._ids[revocation.target] = revocation.until
        else:
            self._subjects[revocation.target] = max(
                revocation.until, self._subjects.get(revocation.target, 0.0)
            )

    def remove(self, key: str) -> None:
        """Forgets the revocation stored under bucket key `key` (deleted or purged there)."""
        by, _, target = key.partition(".")
        if by == RevokedBy.ID:
            self._ids.pop(target, None)
        elif by == RevokedBy.SUBJECT:
            padded = target + "=" * (-len(target) % 4)
            try:
                self._subjects.pop(base64.urlsafe_b64decode(padded).decode(), None)
            except (binascii.Error, UnicodeDecodeError):
                return

    def is_revoked(self, credential_id: str, subject: str, issued_at: float) -> bool:
        """Whether credential `credential_id` of `subject`, issued at `issued_at`, is revoked."""
        if credential_id:
            until = self._ids.get(credential_id)
            if until is not None:
                if time.time() < until:
                    return True
                del self._ids[credential_id]
        revoked_before = self._subjects.get(subject)
        return revoked_before is not None and issued_at <= revoked_before
