"""Tokens that open one session's browser to a client that cannot send an API key.

A view token (from CreateViewToken, short-lived, used once) is given as `?token=`
on the live view's URL; the edge takes it and hands the browser a live ticket in
an HttpOnly cookie scoped to that session's live view, which the page's script and
frame socket then carry. A CDP token (from CreateCdpToken, short-lived, reusable
until it expires, as a CDP client reconnects and fetches `json/version` before it
attaches) is given as `?token=` on the session's CDP socket and DevTools discovery
URLs only. All are signed with the live token secret, which only the scheduler
(which makes view and CDP tokens) and auth (which checks them and makes tickets) hold.
The `typ` claim keeps the kinds apart: none is taken where another is asked for.
"""

import datetime as dt
import enum
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_plus

import jwt
from pydantic import SecretStr

from farm_core.errors import Unauthenticated
from farm_core.identity import load_or_create_secret
from farm_core.scopes import Scope

_AUDIENCE = "farm-live"
_ALGORITHM = "HS256"
LIVE_COOKIE = "farm_live"
CDP_TOKEN_SCOPES = frozenset({Scope.SESSIONS.value, Scope.SCRIPT.value})
"""The asking key's scopes a CDP token may carry: what the edge checks a CDP attach for."""
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
    CDP = "cdp"


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
    # The scopes of the key that asked for a CDP token, as it asked (none in other kinds).
    scopes: frozenset[str] = frozenset()
    # The fingerprint of the asking key's secret it was asked with ('' when not said):
    # the token works as long as that secret does, so a rotation's grace ends it.
    key_secret: str = ""


def encode_live_token(
    secret: str,
    kind: LiveTokenKind,
    session_id: str,
    tenant: str,
    now: dt.datetime,
    ttl_seconds: float,
    key_id: str = "",
    scopes: frozenset[str] = frozenset(),
    not_after: dt.datetime | None = None,
    key_secret: str = "",
) -> tuple[str, dt.datetime]:
    """A signed token of `kind` for the session's browser, and when it expires.

    It lasts `ttl_seconds`, and no later than `not_after` when given.
    """
    expires = now + dt.timedelta(seconds=ttl_seconds)
    if not_after is not None:
        expires = min(expires, not_after)
    claims: dict[str, object] = {
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
    if scopes:
        claims["scp"] = sorted(scopes)
    if key_secret:
        claims["ksec"] = key_secret
    return jwt.encode(claims, secret, algorithm=_ALGORITHM), expires


def decode_live_token(secret: str, token: str, kind: LiveTokenKind) -> LiveToken:
    """The live token's claims; Unauthenticated when it is not a valid token of `kind`."""
    label = "CDP token" if kind is LiveTokenKind.CDP else "live view token"
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            options={"require": ["exp", "sid", "tenant", "jti", "typ"]},
        )
    except jwt.PyJWTError as error:
        raise Unauthenticated(f"{label} refused: {error}") from error
    if claims["typ"] != kind.value:
        raise Unauthenticated(f"{label} refused: not a {kind.value} token")
    return LiveToken(
        kind=kind,
        session_id=str(claims["sid"]),
        tenant=str(claims["tenant"]),
        token_id=str(claims["jti"]),
        expire_time=dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC),
        key_id=str(claims.get("kid", "")),
        scopes=frozenset(str(scope) for scope in claims.get("scp", ())),
        key_secret=str(claims.get("ksec", "")),
    )


def query_tokens(query: str) -> list[str]:
    """The values of `token=` in a URL's `query`, as spelt: the edge's log leaves those out.

    A name spelt otherwise (`%74oken=`) is no token, so that none is taken that the
    access log (envoy.yaml.j2, `[?&]token=`) would keep.
    """
    return [
        unquote_plus(part.removeprefix("token="))
        for part in query.split("&")
        if part.startswith("token=")
    ]
