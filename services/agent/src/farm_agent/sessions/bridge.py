"""Relays one attached client's CDP WebSocket to its session's browser, through the CDP filter.

Each client gets a connection of its own to the browser (Chromium serves several),
so clients never see each other's protocol sessions. aiohttp answers the client's
upgrade; from then on both directions are relayed frame by frame on the event
loop's callbacks: the client's messages pass the filter in `client_socket.py` and
go on as the client's own frames, the browser's answers and events go back as the
very frames the browser sent (`browser_socket.py`). Every message, in either
direction, counts as activity for the session's idle timeout.
"""

import asyncio
import base64
import contextlib
import hashlib
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import hdrs, web

from farm_agent.sessions.browser_socket import WEBSOCKET_GUID, BrowserLink, BrowserLinkError
from farm_agent.sessions.cdp_targets import TargetGuard
from farm_agent.sessions.client_socket import CLOSE_NORMAL, ClientFrames, close_frame
from farm_agent.sessions.ws_frames import OPCODE_CLOSE

log = logging.getLogger(__name__)

MAX_BROWSER_MESSAGE_BYTES = 256 * 1024 * 1024
"""A full-page screenshot of a long page can be large; CDP sends it as one message."""
MAX_CLIENT_MESSAGE_BYTES = 100 * 1024 * 1024
"""Chromium's own bound on what a DevTools client sends (its receive buffer), so a client
works here as against a local browser: Playwright's set_input_files sends a file of up to
its 50 MB as one base64 message, Fetch.fulfillRequest a whole response body."""
CLOSE_REASON_BYTES = 120
"""A WebSocket close reason holds at most 123 bytes."""
BROWSER_HANDSHAKE_SECONDS = 10.0
BROWSER_LET_GO_SECONDS = 2.0
"""How long a client's relay, once over, waits for the browser to close its connection."""
CLIENT_CLOSE_SECONDS = 2.0
"""How long a closed socket waits for the client's own close frame before hanging up."""


@dataclass(eq=False)
class CdpClient:
    """An attached client's upgraded connection; `frames` reads it once its browser link is open.

    Until then nothing but the handshake's answer has been written to it.
    """

    transport: asyncio.Transport
    connection: web.RequestHandler
    frames: ClientFrames | None = None
    # Set once the agent is done with the client's leaving (downloads refused again).
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def leaving(self) -> bool:
        """Whether the client's socket has ended while the agent is not done with its leaving."""
        return self.frames is not None and self.frames.ended.done() and not self.settled.is_set()


async def accept_client(request: web.Request) -> tuple[CdpClient, web.StreamResponse]:
    """Answers the client's WebSocket upgrade (uncompressed, no subprotocol).

    Without compression the browser's frames can go to the client as they are, and
    the client's to the browser. aiohttp's own WebSocket reader is never installed:
    the connection's bytes wait in aiohttp until the bridge's reader takes them.
    """
    if not web.WebSocketResponse().can_prepare(request).ok:
        raise web.HTTPBadRequest(text="not a WebSocket upgrade\n")
    key = request.headers[hdrs.SEC_WEBSOCKET_KEY]
    accept = base64.b64encode(hashlib.sha1(key.encode() + WEBSOCKET_GUID).digest()).decode()
    response = web.StreamResponse(
        status=101,
        headers={
            hdrs.UPGRADE: "websocket",
            hdrs.CONNECTION: "upgrade",
            hdrs.SEC_WEBSOCKET_ACCEPT: accept,
        },
    )
    response.force_close()
    await response.prepare(request)
    transport = request.transport
    # Not isinstance(asyncio.Transport): uvloop's transports do not subclass it.
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client's connection closed while it was accepted")
    return CdpClient(transport, request.protocol), response


async def bridge(
    client: CdpClient,
    browser_endpoint: str,
    on_activity: Callable[[], None],
    on_close_request: Callable[[], Awaitable[None]],
    on_dialog_answer: Callable[[], None] = lambda: None,
) -> None:
    """Relays until either side closes; the browser's close ends the client's socket."""
    link = BrowserLink(client.transport, on_activity, MAX_BROWSER_MESSAGE_BYTES)
    # The browser's messages that name targets are read and cut to the session's own.
    link.inspector = guard = TargetGuard(link.send)
    frames = ClientFrames(link, on_activity, MAX_CLIENT_MESSAGE_BYTES, on_dialog_answer, guard)
    try:
        async with asyncio.timeout(BROWSER_HANDSHAKE_SECONDS):
            await link.open(browser_endpoint)
        # aiohttp feeds the reader what it kept since the upgrade, then every read.
        client.connection.set_parser(cast(Any, frames))
        client.frames = frames
        await asyncio.wait(
            {link.closed, frames.ended, frames.close_requested},
            return_when=asyncio.FIRST_COMPLETED,
        )
        if frames.close_requested.done():
            await on_close_request()
        if link.closed.done() and link.closed.exception() is not None:
            error = link.closed.exception()
            if not isinstance(error, ConnectionError):
                log.warning("a CDP relay ended with an error: %s", error)
    except BaseException:
        link.close()
        raise
    await _let_go(link)


async def _let_go(link: BrowserLink) -> None:
    """Closes the connection to the browser and waits (a while) for the browser to close its side.

    Chromium hands the connection's end to its UI thread, where it detaches the
    connection's DevTools session and resets what that set (download behaviors), before
    it closes the socket: a command the agent sends on its own connection afterwards
    is handled after that reset, so what the agent sets again then stays.
    """
    if not link.closed.done():
        link.send_control(OPCODE_CLOSE, struct.pack("!H", CLOSE_NORMAL))
        with contextlib.suppress(TimeoutError, BrowserLinkError, ConnectionError):
            async with asyncio.timeout(BROWSER_LET_GO_SECONDS):
                await asyncio.shield(link.closed)
    link.close()


async def close_client(
    client: web.WebSocketResponse | CdpClient, reason: str, code: int = CLOSE_NORMAL
) -> None:
    """Ends a client's socket with a close frame (normal, unless `code`) that says why."""
    if isinstance(client, web.WebSocketResponse):
        if not client.closed:
            message = reason.encode()[:CLOSE_REASON_BYTES]
            await client.close(code=code, message=message)
        return
    frames = client.frames
    if frames is None:
        if not client.transport.is_closing():
            client.transport.write(close_frame(code, reason))
    elif frames.link.cut_mid_message:
        # The close frame cannot be sent, so there is no close of the client's to wait for.
        frames.end(code, reason)
    else:
        frames.end(code, reason)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLIENT_CLOSE_SECONDS):
                await asyncio.shield(frames.client_closed)
    client.transport.close()
