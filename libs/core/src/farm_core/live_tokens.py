"""Tokens that open one session's live view in a browser, which cannot send an API key.

A view token (from CreateViewToken, short-lived, used once) is given as `?token=`
on the live view's URL; the edge takes it and hands the browser a live ticket in
an HttpOnly cookie scoped to that session's live view, which the page's script and
frame socket then carry. Both are signed with the farm's identity secret.
"""

import datetime as dt
import enum
import secrets
from dataclasses import dataclass

import jwt

from farm_core.errors import Unauthenticated

_AUDIENCE = "farm-live"
_ALGORITHM = "HS256"
LIVE_COOKIE = "farm_live"


class LiveTokenKind(enum.StrEnum):
    """What a live token is."""

    VIEW = "view"
    TICKET = "ticket"


@dataclass(frozen=True)
class LiveToken:
    """A verified live token: whose live view it opens, and its id (for one-time use)."""

    kind: LiveTokenKind
    session_id: str
    tenant: str
    token_id: str
    expire_time: dt.datetime


def encode_live_token(
    secret: str,
    kind: LiveTokenKind,
    session_id: str,
    tenant: str,
    now: dt.datetime,
    ttl_seconds: float,
) -> tuple[str, dt.datetime]:
    """A signed token of `kind` for the session's live view, and when it expires."""
    expires = now + dt.timedelta(seconds=ttl_seconds)
    claims = {
        "aud": _AUDIENCE,
        "typ": kind.value,
        "sid": session_id,
        "tenant": tenant,
        "jti": secrets.token_hex(16),
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM), expires


def decode_live_token(secret: str, token: str, kind: LiveTokenKind) -> LiveToken:
    """The live token's claims; Unauthenticated when it is not a valid token of `kind`."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            options={"require": ["exp", "sid", "tenant", "jti", "typ"]},
        )
    except jwt.PyJWTError as error:
        raise Unauthenticated(f"live view token refused: {error}") from error
    if claims["typ"] != kind.value:
        raise Unauthenticated(f"live view token refused: not a {kind.value} token")
    return LiveToken(
        kind=kind,
        session_id=str(claims["sid"]),
        tenant=str(claims["tenant"]),
        token_id=str(claims["jti"]),
        expire_time=dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC),
    )
