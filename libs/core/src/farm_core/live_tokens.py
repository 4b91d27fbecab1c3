"""Tokens that open one session's live view in a browser, which cannot send an API key.

A view token (from CreateViewToken, short-lived, used once) is given as `?token=`
on the live view's URL; the edge takes it and hands the browser a live ticket in
an HttpOnly cookie scoped to that session's live view, which the page's script and
frame socket then carry. Both are signed with the live token secret, which only the
scheduler (which makes view tokens) and auth (which checks them and makes tickets) hold.
"""

import datetime as dt
import enum
import secrets
from dataclasses import dataclass
from pathlib import Path

import jwt
from pydantic import SecretStr

from farm_core.errors import Unauthenticated
from farm_core.identity import load_or_create_secret

_AUDIENCE = "farm-live"
_ALGORITHM = "HS256"
LIVE_COOKIE = "farm_live"
LIVE_SECRET_FILE = "live-token-secret"
LIVE_SECRET_DESCRIPTION = (
    "Secret live view tokens are signed with (only the scheduler and auth hold it); "
    "default: FARM_HOME/live-token-secret."
)


def resolve_live_secret(given: SecretStr | None, home: Path) -> str:
    """The live token secret: `given` (from the environment), or FARM_HOME's file."""
    if given is not None:
        return given.get_secret_value()
    return load_or_create_secret(home / LIVE_SECRET_FILE)


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
    # The API key the view token was asked with ('' in a token made before keys were
    # named): the edge refuses the token and its ticket once that key is revoked.
    key_id: str = ""


def encode_live_token(
    secret: str,
    kind: LiveTokenKind,
    session_id: str,
    tenant: str,
    now: dt.datetime,
    ttl_seconds: float,
    key_id: str = "",
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
    if key_id:
        claims["kid"] = key_id
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
        key_id=str(claims.get("kid", "")),
    )
