"""One-time form tokens: a form submitted again (a reload of its answer) does nothing twice.

The console keeps no shared state, and any number of replicas may serve it, so a token
is not stored when it is made: it carries a random nonce and its expiry, signed with
HMAC-SHA256 under the signed-in user's own API key (which every replica sees, and
no one else has). A used nonce is remembered by the process that took it until the
token expires; a resubmission that another replica serves is not caught.
"""

import hashlib
import hmac
import secrets
import time
from enum import Enum

LIFETIME_SECONDS = 15 * 60


class Submission(Enum):
    """What a submitted token says about its form."""

    FIRST = "first"
    REPEATED = "repeated"
    INVALID = "invalid"


class FormTokens:
    """Makes and checks one-time tokens for the forms of one purpose ("create-key")."""

    def __init__(self, purpose: str, lifetime: float = LIFETIME_SECONDS) -> None:
        self.purpose = purpose
        self.lifetime = lifetime
        self._used: dict[str, float] = {}

    def make(self, key: str) -> str:
        """A fresh token for a form shown to the holder of `key`."""
        body = f"{secrets.token_hex(16)}.{int(time.time() + self.lifetime)}"
        return f"{body}.{self._mac(key, body)}"

    def take(self, key: str, token: str) -> Submission:
        """Checks `token` and marks it used: FIRST only the first time it is taken."""
        now = time.time()
        self._used = {nonce: ends for nonce, ends in self._used.items() if ends > now}
        nonce, _, rest = token.partition(".")
        expires, _, mac = rest.partition(".")
        body = f"{nonce}.{expires}"
        if not (expires.isdigit() and hmac.compare_digest(mac, self._mac(key, body))):
            return Submission.INVALID
        if int(expires) <= now:
            return Submission.INVALID
        if nonce in self._used:
            return Submission.REPEATED
        self._used[nonce] = int(expires)
        return Submission.FIRST

    def give_back(self, token: str) -> None:
        """Makes a taken token usable again: its form was refused, and nothing was made."""
        self._used.pop(token.partition(".")[0], None)

    def _mac(self, key: str, body: str) -> str:
        message = f"{self.purpose}:{body}".encode()
        return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
