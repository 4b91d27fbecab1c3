"""Tokens that open a session's browser to a client that cannot send an API key.

A view token opens the live view once (docs/sessions.md, "Watch it live"); a CDP
token attaches CDP clients and answers DevTools discovery until it expires (ibid.,
"Attach without a header"). Both name the session, its tenant and the key that asked,
and are signed with the live token secret that auth checks them with. They name the
asking key's secret too (its fingerprint), so they stop working when it does: on the
key's revoke or expiry, and when a rotation's grace ends the secret they were asked with.
"""

from farm.sessions.v1 import sessions_pb2
from farm_core.db import utcnow
from farm_core.identity import Identity
from farm_core.live_tokens import CDP_TOKEN_SCOPES, LiveTokenKind, encode_live_token
from farm_core.timestamps import to_timestamp
from farm_scheduler.sessions.links import session_links
from farm_scheduler.sessions.records import SessionRecord


class SessionTokens:
    """Makes view and CDP tokens for the sessions behind the edge at `public_url`."""

    def __init__(
        self,
        secret: str,
        public_url: str,
        view_token_ttl_seconds: float,
        cdp_token_ttl_seconds: float,
    ) -> None:
        self._secret = secret
        self._public_url = public_url
        self._view_ttl_seconds = view_token_ttl_seconds
        self._cdp_ttl_seconds = cdp_token_ttl_seconds

    def view(self, record: SessionRecord, asker: Identity) -> sessions_pb2.ViewToken:
        """A one-time token for the session's live view, and the URL carrying it."""
        token, expires = encode_live_token(
            self._secret,
            LiveTokenKind.VIEW,
            record.id,
            record.tenant,
            utcnow(),
            self._view_ttl_seconds,
            key_id=asker.key_id,
            key_secret=_asking_secret(asker),
        )
        live_url = session_links(self._public_url, record.id).live_url
        return sessions_pb2.ViewToken(
            token=token, url=f"{live_url}?token={token}", expire_time=to_timestamp(expires)
        )

    def cdp(self, record: SessionRecord, asker: Identity) -> sessions_pb2.CdpToken:
        """A token for the session's CDP socket and discovery, lasting no longer than it.

        It carries the asker's `sessions` and `script`, which the edge checks as it would
        the key's (FARM_AUTH_CDP_NEEDS_SCRIPT).
        """
        token, expires = encode_live_token(
            self._secret,
            LiveTokenKind.CDP,
            record.id,
            record.tenant,
            utcnow(),
            self._cdp_ttl_seconds,
            key_id=asker.key_id,
            # The scopes a CDP attach is checked for; the key's others stay behind.
            scopes=asker.scopes & CDP_TOKEN_SCOPES,
            not_after=record.expire_time,
            key_secret=_asking_secret(asker),
        )
        links = session_links(self._public_url, record.id)
        return sessions_pb2.CdpToken(
            token=token,
            cdp_url=f"{links.cdp_url}?token={token}",
            discovery_url=f"{links.discovery_url}?token={token}",
            expire_time=to_timestamp(expires),
        )


def _asking_secret(asker: Identity) -> str:
    """The fingerprint of the secret the asker showed ('' when its identity does not say)."""
    return asker.validity.secret if asker.validity is not None else ""
