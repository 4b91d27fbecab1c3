"""The agent's HTTP port for sessions, reached only through Envoy: CDP sockets and live views.

Envoy routes `/v1/sessions/{id}/cdp`, `/v1/sessions/{id}/json/version` (DevTools
discovery) and `/v1/sessions/{id}/live...` here after the
auth service has checked the caller; the request carries the signed identity, which
is verified again here, so a request that skipped the edge is refused. A session of
another tenant, or one this agent does not hold, is 404. Each socket lasts no longer
than the key that opened it (farm_core.key_streams): revoked, expired, or the old
secret it was opened with past its rotation's grace, it is closed (1008) saying so.
"""

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator
from importlib import resources
from typing import Protocol

import aiohttp
from aiohttp import web
from playwright.async_api import Error as PlaywrightError

from farm_agent.sessions.bridge import CdpClient, accept_client, bridge, close_client
from farm_agent.sessions.client_socket import CLOSE_POLICY_VIOLATION
from farm_agent.sessions.discovery import browser_version, discovery_answer, public_cdp_url
from farm_agent.sessions.session import OpenSession
from farm_core.app_listener import AppListener
from farm_core.errors import Unauthenticated
from farm_core.identity import IDENTITY_HEADER, IdentityVerifier
from farm_core.key_revocations import opening_key
from farm_core.key_streams import KeyStreams
from farm_core.key_validity import KeyValidity
from farm_core.live_tokens import query_tokens
from farm_core.scopes import Scope
from farm_core.sessions import CloseReason

log = logging.getLogger(__name__)

LIVE_ASSETS = {
    "view.js": "text/javascript",
    "view.css": "text/css",
}
OPENED_BY = web.RequestKey[tuple[str, KeyValidity | None]]("farm_key_id")
"""The request's item naming the API key that opened it and until when it works (as its
signed identity says)."""
LEAVING_SECONDS = 5.0
"""How long a new client's relay waits for the agent to be done with those that left."""
# The live page loads only its own script, style and frames.
LIVE_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class SessionLookup(Protocol):
    """Finds the open sessions of this agent and closes them on request."""

    def find(self, session_id: str) -> OpenSession | None:
        """The open session with this id, if this agent holds it."""

    async def close(self, session: OpenSession, reason: CloseReason) -> object:
        """Closes the session (its browser and recording; its close is published)."""


async def _after_leavers(session: OpenSession) -> None:
    """Waits (a while) for the agent to be done with the clients that have just left.

    Their connections' ends reset the download behaviors they set, which the agent
    then sets again: a client attached after one left comes after both.
    """
    leaving = [
        client.settled.wait()
        for client in session.clients
        if isinstance(client, CdpClient) and client.leaving
    ]
    if leaving:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LEAVING_SECONDS):
                await asyncio.gather(*leaving)


class SessionEndpoints:
    """An aiohttp server: the sessions' CDP WebSockets and live views."""

    def __init__(
        self,
        sessions: SessionLookup,
        codec: IdentityVerifier,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
        key_streams: KeyStreams | None = None,
        public_url: str = "http://127.0.0.1:8080",
    ) -> None:
        self._sessions = sessions
        self._public_url = public_url
        self._key_streams = key_streams or KeyStreams()
        self._ssl_context = ssl_context
        self._codec = codec
        self._host = host
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/v1/sessions/{id}/cdp", self._guarded(self._cdp))
        for version_path in ("/v1/sessions/{id}/json/version", "/v1/sessions/{id}/json/version/"):
            app.router.add_get(version_path, self._guarded(self._version))
        app.router.add_get("/v1/sessions/{id}/live", self._guarded(self._live_page))
        app.router.add_get("/v1/sessions/{id}/live/frames", self._guarded(self._live_frames))
        app.router.add_get("/v1/sessions/{id}/live/{asset}", self._guarded(self._live_asset))
        self._listener = AppListener(app, host, port, ssl_context)

    @property
    def port(self) -> int:
        """The port it listens on (the one chosen, when 0 was asked)."""
        return self._listener.port

    async def start(self) -> None:
        """Starts listening."""
        await self._listener.start()
        scheme = "https" if self._ssl_context is not None else "http"
        log.info("session endpoints on %s://%s:%d", scheme, self._host, self.port)

    async def close(self) -> None:
        """Stops listening and ends open connections."""
        await self._listener.close()

    def _guarded(
        self, handler: Callable[[web.Request, OpenSession], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """The handler, called only for the caller's own session held here."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                identity = self._codec.decode(request.headers.get(IDENTITY_HEADER, ""))
            except Unauthenticated as error:
                raise web.HTTPUnauthorized(text=f"{error}\n") from error
            if not identity.has_scope(Scope.SESSIONS):
                raise web.HTTPForbidden(text="the key lacks the scope 'sessions'\n")
            session_id = request.match_info["id"]
            session = self._sessions.find(session_id)
            if session is None or session.tenant != identity.tenant or session.closing:
                raise web.HTTPNotFound(text=f"session {session_id} is not open\n")
            # The socket it opens ends with this key (_attached).
            request[OPENED_BY] = (opening_key(identity.key_id), identity.validity)
            return await handler(request, session)

        return guarded

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    @contextlib.contextmanager
    def _attached(
        self, request: web.Request, session: OpenSession, client: web.WebSocketResponse | CdpClient
    ) -> Iterator[None]:
        """Holds `client` among the session's sockets, ended when its key stops being valid."""
        key_id, validity = request[OPENED_BY]

        async def end(reason: str) -> None:
            session.clients.discard(client)
            with contextlib.suppress(ConnectionError):
                await close_client(client, reason, CLOSE_POLICY_VIOLATION)

        session.clients.add(client)
        stream = self._key_streams.add(key_id, validity, end)
        try:
            yield
        finally:
            self._key_streams.discard(stream)
            session.clients.discard(client)

    async def _cdp(self, request: web.Request, session: OpenSession) -> web.StreamResponse:
        client, response = await accept_client(request)
        with self._attached(request, session, client):
            return await self._relay(session, client, response)

    async def _relay(
        self, session: OpenSession, client: CdpClient, response: web.StreamResponse
    ) -> web.StreamResponse:
        """Relays a CDP client to the session's browser until either ends."""
        session.touch()
        await _after_leavers(session)

        async def close_session() -> None:
            await self._sessions.close(session, CloseReason.BROWSER_CLOSED)

        try:
            await bridge(
                client,
                session.browser.cdp_endpoint,
                session.touch,
                close_session,
                session.dialogs.answered_by_client,
            )
        except (OSError, ConnectionError) as error:
            log.info("session %s: a CDP client's relay ended: %s", session.session_id, error)
        finally:
            try:
                if not session.closing:
                    session.touch()
                    await self._refuse_downloads_again(session)
            finally:
                client.settled.set()
            session.clients.discard(client)
            with contextlib.suppress(ConnectionError):
                await close_client(client, "the session's browser connection ended")
        return response

    async def _refuse_downloads_again(self, session: OpenSession) -> None:
        """Downloads stay refused after the client: Chromium reset what its connection set."""
        try:
            await session.browser.refuse_downloads()
        except PlaywrightError as error:
            if session.closing or not session.browser.alive:
                # Its browser is gone or going (a close begun meanwhile, a crash, a killed
                # process): no context is left to refuse; the session closes as it finds.
                log.debug("session %s: no browser left to refuse downloads in", session.session_id)
                return
            log.error(
                "session %s: downloads may be saved: not refused again after a client left: %s",
                session.session_id,
                error,
            )

    async def _version(self, request: web.Request, session: OpenSession) -> web.StreamResponse:
        """DevTools discovery: the browser's json/version, naming the session's CDP socket."""
        try:
            version = await browser_version(session.browser.debug_port)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise web.HTTPServiceUnavailable(
                text=f"session {session.session_id}: its browser did not tell its version: "
                f"{type(error).__name__}\n"
            ) from error
        tokens = query_tokens(request.query_string)
        cdp_url = public_cdp_url(self._public_url, session.session_id, tokens[0] if tokens else "")
        # The answer may carry the CDP token: no cache keeps it.
        return web.json_response(
            discovery_answer(version, cdp_url), headers={"Cache-Control": "no-store"}
        )

    async def _live_page(self, request: web.Request, session: OpenSession) -> web.StreamResponse:
        page = resources.files("farm_agent.sessions.live").joinpath("index.html").read_text()
        return web.Response(
            text=page,
            content_type="text/html",
            headers={"Content-Security-Policy": LIVE_PAGE_POLICY, "Cache-Control": "no-store"},
        )

    async def _live_asset(self, request: web.Request, session: OpenSession) -> web.StreamResponse:
        name = request.match_info["asset"]
        if name not in LIVE_ASSETS:
            raise web.HTTPNotFound(text=f"no such file: {name}\n")
        body = resources.files("farm_agent.sessions.live").joinpath(name).read_text()
        return web.Response(
            text=body,
            content_type=LIVE_ASSETS[name],
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
        )

    async def _live_frames(self, request: web.Request, session: OpenSession) -> web.StreamResponse:
        socket = web.WebSocketResponse(autoping=True, heartbeat=30)
        await socket.prepare(request)
        with self._attached(request, session, socket):
            await self._send_frames(session, socket)
        return socket

    async def _send_frames(self, session: OpenSession, socket: web.WebSocketResponse) -> None:
        """Sends the session's screencast frames until the viewer goes away."""
        viewer = await session.screencast.watch()

        async def send_frames() -> None:
            while True:
                await socket.send_bytes(await viewer.next_frame())

        sender = asyncio.create_task(send_frames())
        try:
            # The viewer sends nothing; reading notices when it goes away.
            async for _ in socket:
                pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender
            await session.screencast.unwatch(viewer)
