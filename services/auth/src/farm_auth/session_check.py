"""The edge's check of a request for a session's browser: its CDP socket, discovery, live view.

Such a request needs a key with the scope `sessions` of the session's tenant, or,
for the live view only, a view token (`?token=`, spent on first use by its own
session's live view page, and exchanged for a live ticket cookie) or that ticket,
or, for the CDP socket and its DevTools discovery (`json/version`) only, a CDP
token (`?token=`, reusable until it expires). A session that no agent holds, or
that belongs to another tenant, is 404 to a key; a CDP token for it is 401. The answer
tells Envoy which agent to send the request to (the check's x-farm-agent answer
header, which Envoy keeps as dynamic metadata for the original-destination cluster).
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from farm.queue.v1 import queue_pb2
from farm_auth.session_routes import SessionRoutes
from farm_core.db import utcnow
from farm_core.errors import NotFound, PermissionDenied, Unauthenticated
from farm_core.identity import Identity
from farm_core.key_revocations import live_identity_key
from farm_core.key_validity import KeyValidity
from farm_core.live_tokens import (
    CDP_TOKEN_SCOPES,
    LIVE_COOKIE,
    LiveToken,
    LiveTokenKind,
    decode_live_token,
    encode_live_token,
    query_tokens,
)
from farm_core.scopes import Scope

SESSION_PATH = re.compile(
    r"^/v1/sessions/(?P<id>[^/]+)/(?P<part>cdp|json/version/?|live(/[^/]*)?)$"
)


@dataclass(frozen=True)
class SessionTarget:
    """A request for a session's browser: which session, and whether for its live view."""

    session_id: str
    live: bool
    # The CDP socket or the live page itself, not one of the page's files or its frames.
    attach: bool = True
    # `?token=`: a view token (live view) or a CDP token (CDP socket and discovery).
    query_token: str = ""
    cookie_ticket: str = ""


@dataclass(frozen=True)
class Admitted:
    """A request let through: as whom, to which agent, and a ticket cookie to set, if any."""

    identity: Identity
    route: queue_pb2.SessionRoute
    set_cookie: str = ""


def session_target(path: str, cookie_header: str | None) -> SessionTarget | None:
    """The session a request path names; None for any other request."""
    parts = urlsplit(path)
    matched = SESSION_PATH.fullmatch(parts.path)
    if matched is None:
        return None
    live = matched["part"].startswith("live")
    tokens = query_tokens(parts.query)
    return SessionTarget(
        session_id=matched["id"],
        live=live,
        attach=matched["part"] in ("cdp", "live"),
        query_token=tokens[0] if tokens else "",
        cookie_ticket=_cookie(cookie_header, LIVE_COOKIE) if live else "",
    )


class SessionAdmission:
    """Admits callers to their own tenant's sessions' browsers."""

    def __init__(
        self,
        routes: SessionRoutes,
        secret: str,
        ticket_ttl_seconds: float,
        key_in_force: Callable[[str, str, str], Awaitable[KeyValidity | None]],
        *,
        cdp_needs_script: bool = False,
    ) -> None:
        self._routes = routes
        self._cdp_needs_script = cdp_needs_script
        self._secret = secret
        self._ticket_ttl_seconds = ticket_ttl_seconds
        # Until when API key (id, tenant) and its secret (a fingerprint, or '') work;
        # None once the key is revoked or expired.
        self._key_in_force = key_in_force

    async def by_key(self, target: SessionTarget, identity: Identity) -> Admitted:
        """A caller with an API key: the key needs the scope `sessions` and the tenant.

        With `cdp_needs_script`, the CDP socket needs `script` too; the live view never does.
        """
        if not identity.has_scope(Scope.SESSIONS):
            raise PermissionDenied(
                f"API key {identity.key_id} lacks the scope {Scope.SESSIONS.value!r}"
            )
        route = await self._route(target.session_id, identity.tenant)
        # CDP runs any JavaScript in the session's pages, as a `script` action does.
        if self._cdp_needs_script and not target.live and not identity.has_scope(Scope.SCRIPT):
            raise PermissionDenied(
                f"API key {identity.key_id} lacks the scope {Scope.SCRIPT.value!r} "
                "that a session's CDP socket needs (it runs any script in the pages)"
            )
        return Admitted(identity, route)

    async def by_token(self, target: SessionTarget) -> Admitted:
        """A client with a token: a CDP token, or a view token or its ticket for the live view."""
        if not target.live:
            return await self._by_cdp_token(target)
        if target.query_token:
            # A view token is spent only by its own session's live page, once everything
            # else let it through: a request refused for any reason leaves it unspent.
            if not target.attach:
                raise Unauthenticated(
                    "a view token opens only the live view page "
                    f"/v1/sessions/{target.session_id[:64]}/live, not its files or frames"
                )
            token, validity = await self._decode(
                target.query_token, LiveTokenKind.VIEW, target.session_id
            )
        elif target.cookie_ticket:
            token, validity = await self._decode(
                target.cookie_ticket, LiveTokenKind.TICKET, target.session_id
            )
        else:
            raise Unauthenticated("no API key, view token or live ticket")
        route = await self._route(token.session_id, token.tenant)
        cookie = await self._ticket_cookie(token) if token.kind is LiveTokenKind.VIEW else ""
        identity = Identity(
            tenant=token.tenant,
            # Names the key that asked for the token: its revoke ends the view's sockets.
            key_id=live_identity_key(token.token_id, token.key_id),
            scopes=frozenset({Scope.SESSIONS.value}),
            # The asking key's expiry, or its secret's end in a rotation, ends them too.
            validity=validity,
        )
        return Admitted(identity, route, cookie)

    async def _by_cdp_token(self, target: SessionTarget) -> Admitted:
        """A CDP client with a CDP token: as the key that asked for it would be admitted."""
        if not target.query_token:
            raise Unauthenticated("no API key or CDP token")
        token, validity = await self._decode(
            target.query_token, LiveTokenKind.CDP, target.session_id
        )
        if validity is None:
            # Every CDP token names its key, whose revoke or expiry must end it.
            raise Unauthenticated("this CDP token names no API key")
        try:
            route = await self._route(token.session_id, token.tenant)
        except NotFound as gone:
            raise Unauthenticated(
                f"this CDP token's session {token.session_id} is not open (closed, or never was)"
            ) from gone
        scopes = token.scopes & CDP_TOKEN_SCOPES
        if Scope.SESSIONS.value not in scopes:
            raise PermissionDenied(f"this CDP token lacks the scope {Scope.SESSIONS.value!r}")
        if self._cdp_needs_script and Scope.SCRIPT.value not in scopes:
            raise PermissionDenied(
                f"this CDP token's API key {token.key_id} lacks the scope "
                f"{Scope.SCRIPT.value!r} that a session's CDP socket needs "
                "(it runs any script in the pages)"
            )
        identity = Identity(
            tenant=token.tenant,
            # Names the key that asked for the token: its revoke ends the token's sockets.
            key_id=live_identity_key(token.token_id, token.key_id),
            scopes=scopes,
            validity=validity,
        )
        return Admitted(identity, route)

    async def _ticket_cookie(self, view_token: LiveToken) -> str:
        """Spends `view_token`; the Set-Cookie of the live ticket it is exchanged for."""
        if not await self._routes.spend(view_token.token_id):
            raise Unauthenticated("this view token was used already; ask for a new one")
        ticket, _ = encode_live_token(
            self._secret,
            LiveTokenKind.TICKET,
            view_token.session_id,
            view_token.tenant,
            utcnow(),
            self._ticket_ttl_seconds,
            key_id=view_token.key_id,
            key_secret=view_token.key_secret,
        )
        return (
            f"{LIVE_COOKIE}={ticket}; Path=/v1/sessions/{view_token.session_id}/live; "
            f"Max-Age={int(self._ticket_ttl_seconds)}; HttpOnly; SameSite=Strict"
        )

    async def _decode(
        self, text: str, kind: LiveTokenKind, session_id: str
    ) -> tuple[LiveToken, KeyValidity | None]:
        """The token, and until when the key that asked for it works (None: not named)."""
        token = decode_live_token(self._secret, text, kind)
        if token.session_id != session_id:
            raise Unauthenticated(f"this {kind.value} token is for another session")
        if not token.key_id:
            return token, None
        # A token and its ticket last no longer than the key that asked for the token,
        # nor than the secret it was asked with (a rotation's grace ends the old one).
        validity = await self._key_in_force(token.key_id, token.tenant, token.key_secret)
        if validity is None:
            raise Unauthenticated(
                f"this {kind.value} token's API key {token.key_id} is revoked or expired"
            )
        ends = validity.secret_expires
        if ends is not None and ends <= utcnow().timestamp():
            raise Unauthenticated(
                f"this {kind.value} token's API key {token.key_id} was rotated: the secret "
                "it was asked with no longer works; ask for a new token with the new secret"
            )
        return token, validity

    async def _route(self, session_id: str, tenant: str) -> queue_pb2.SessionRoute:
        route = await self._routes.route(session_id)
        if route is None or route.tenant != tenant:
            raise NotFound("session", session_id[:64])
        return route


def _cookie(header: str | None, name: str) -> str:
    if not header:
        return ""
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:
        return ""
    morsel = cookies.get(name)
    return morsel.value if morsel is not None else ""
