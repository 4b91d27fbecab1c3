"""One-time form tokens: a form submitted again (a reload of its answer) does nothing twice.

The console keeps no state, and any number of replicas may serve it, so a token is
not stored when it is made: it carries a random nonce and its expiry, signed with
HMAC-SHA256 under the signed-in user's own API key (which every replica sees, and
no one else has). The nonce goes with the form's call as its idempotency key, so the
farm itself refuses a second call with it, whichever replica sends it.
"""

import hashlib
import hmac
import secrets
import time

LIFETIME_SECONDS = 15 * 60


class FormTokens:
    """Makes and checks one-time tokens for the forms of one purpose ("create-key")."""

    def __init__(self, purpose: str, lifetime: float = LIFETIME_SECONDS) -> None:
        self.purpose = purpose
        self.lifetime = lifetime

    def make(self, key: str) -> str:
        """A fresh token for a form shown to the holder of `key`."""
        body = f"{secrets.token_hex(16)}.{int(time.time() + self.lifetime)}"
        return f"{body}.{self._mac(key, body)}"

    def nonce(self, key: str, token: str) -> str | None:
        """The nonce of `token`, the form's idempotency key; None if altered, another's or old."""
        nonce, _, rest = token.partition(".")
        expires, _, mac = rest.partition(".")
        body = f"{nonce}.{expires}"
        if not (expires.isdigit() and hmac.compare_digest(mac, self._mac(key, body))):
            return None
        if int(expires) <= time.time():
            return None
        return nonce

    def _mac(self, key: str, body: str) -> str:
        message = f"{self.purpose}:{body}".encode()
        return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
