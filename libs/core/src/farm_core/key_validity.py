"""Until when the API key behind an identity works, and which of its secrets was shown.

Auth puts this in the identity it signs for a key (farm_core.identity), so a service
that holds a stream open for the identity (an agent's session socket, the scheduler's
WatchTask) ends the stream when the key expires, or when the old secret of a rotated
key that opened it stops working, without asking auth again. A key's secrets change
after a stream opened (RotateApiKey): auth then names the secrets that still work
(`KeySecrets`, on the revoked keys' bucket), and the streams opened with any other
secret end (farm_core.key_streams).
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

KEY_EXPIRED_REASON = "API key {key_id} expired"
"""Why a stream opened with a key that has expired ended."""
KEY_ROTATED_REASON = "API key {key_id} rotated: the secret this was opened with no longer works"
"""Why a stream opened with a rotated key's old secret ended (its grace is over)."""


@dataclass(frozen=True)
class KeySecrets:
    """The secrets of an API key that work after a change of them (a rotation).

    Each is named by its fingerprint (`secret_fingerprint` in auth), never the secret:
    the current one, and the one before it with its grace end (a Unix time), if any.
    """

    key_id: str
    current: str
    previous: str = ""
    previous_until: float = 0.0

    def to_json(self) -> dict[str, object]:
        """The notice as a JSON object (the bucket entry's value)."""
        return {
            "current": self.current,
            "previous": self.previous,
            "previousUntil": self.previous_until,
        }

    @classmethod
    def from_json(cls, key_id: str, values: Mapping[str, object]) -> "KeySecrets":
        """The notice of key `key_id` read from `to_json`'s object."""
        until = values.get("previousUntil")
        return cls(
            key_id,
            str(values.get("current", "")),
            str(values.get("previous", "")),
            float(until) if isinstance(until, int | float) else 0.0,
        )


@dataclass(frozen=True)
class KeyValidity:
    """Until when a stream opened with an API key's secret may go on, if nothing changes."""

    # A fingerprint of the secret shown ('' when unknown: no rotation ends the stream).
    secret: str = ""
    # When the key expires (a Unix time); None: never.
    key_expires: float | None = None
    # When the secret shown stops working (an old secret's grace end); None: with the key.
    secret_expires: float | None = None

    def ending(self) -> tuple[float, str] | None:
        """When the stream must end (a Unix time) and the reason's template; None: never."""
        key_end = math.inf if self.key_expires is None else self.key_expires
        secret_end = math.inf if self.secret_expires is None else self.secret_expires
        if key_end == secret_end == math.inf:
            return None
        if key_end <= secret_end:
            return key_end, KEY_EXPIRED_REASON
        return secret_end, KEY_ROTATED_REASON

    def under(self, secrets: KeySecrets, now: float) -> "KeyValidity":
        """The validity once the key's working secrets are `secrets` (as of `now`)."""
        if not self.secret or self.secret == secrets.current:
            return self
        ends = now
        if self.secret == secrets.previous:
            ends = max(now, secrets.previous_until)
        if self.secret_expires is not None:
            ends = min(ends, self.secret_expires)
        return replace(self, secret_expires=ends)

    def to_claims(self) -> dict[str, object]:
        """The identity token's `key` claim."""
        claims: dict[str, object] = {"secret": self.secret}
        if self.key_expires is not None:
            claims["exp"] = self.key_expires
        if self.secret_expires is not None:
            claims["secretExp"] = self.secret_expires
        return claims

    @classmethod
    def from_claims(cls, claims: Mapping[str, object]) -> "KeyValidity":
        """The validity an identity token's `key` claim states."""
        key_expires, secret_expires = claims.get("exp"), claims.get("secretExp")
        return cls(
            secret=str(claims.get("secret", "")),
            key_expires=float(key_expires) if isinstance(key_expires, int | float) else None,
            secret_expires=(
                float(secret_expires) if isinstance(secret_expires, int | float) else None
            ),
        )
