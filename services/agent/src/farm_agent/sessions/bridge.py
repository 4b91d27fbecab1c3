"""Relays one attached client's CDP WebSocket to its session's browser, through the CDP filter.

Each client gets a connection of its own to the browser (Chromium serves several),
so clients never see each other's protocol sessions. Messages from the client pass
the filter; the browser's answers and events go back unchanged, as the very frames
the browser sent (`browser_socket.py`), without being decoded here. Every message,
in either direction, counts as activity for the session's idle timeout.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from farm_agent.sessions.browser_socket import BrowserLink
from farm_agent.sessions.cdp_filter import CloseSession, Forward, Refuse, decide

log = logging.getLogger(__name__)

MAX_BROWSER_MESSAGE_BYTES = 256 * 1024 * 1024
"""A full-page screenshot of a long page can be large; CDP sends it as one message."""
MAX_CLIENT_MESSAGE_BYTES = 16 * 1024 * 1024
"""A client's commands are small; each is parsed by the filter, so they are bounded."""
CLOSE_REASON_BYTES = 120
"""A WebSocket close reason holds at most 123 bytes."""
BROWSER_HANDSHAKE_SECONDS = 10.0


@dataclass(frozen=True)
class Client:
    """An attached client's socket, accepted for the bridge: its response and its connection."""

    socket: web.WebSocketResponse
    transport: asyncio.Transport


async def accept_client(request: web.Request) -> Client:
    """Accepts the client's WebSocket as the bridge needs it: uncompressed, its connection known.

    Without compression the browser's frames can go to the client as they are.
    """
    socket = web.WebSocketResponse(
        max_msg_size=MAX_CLIENT_MESSAGE_BYTES, autoping=True, compress=False
    )
    await socket.prepare(request)
    transport = request.transport
    # Not isinstance(asyncio.Transport): uvloop's transports do not subclass it.
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client's connection closed while it was accepted")
    return Client(socket, transport)


async def bridge(
    client: Client,
    browser_endpoint: str,
    on_activity: Callable[[], None],
    on_close_request: Callable[[], Awaitable[None]],
) -> None:
    """Relays until either side closes; the browser's close ends the client's socket."""
    link = BrowserLink(client.transport, on_activity, MAX_BROWSER_MESSAGE_BYTES)
    try:
        async with asyncio.timeout(BROWSER_HANDSHAKE_SECONDS):
            await link.open(browser_endpoint)
        to_browser = asyncio.create_task(
            _from_client(client.socket, link, on_activity, on_close_request)
        )
        done, pending = await asyncio.wait(
            {to_browser, link.closed}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in done:
            error = task.exception()
            if error is not None and not isinstance(error, ConnectionError):
                log.warning("a CDP relay ended with an error: %s", error)
    finally:
        link.close()


async def close_client(client: web.WebSocketResponse, reason: str) -> None:
    """Ends a client's socket with a normal close frame that says why."""
    if not client.closed:
        message = reason.encode()[:CLOSE_REASON_BYTES]
        await client.close(code=aiohttp.WSCloseCode.OK, message=message)


async def _from_client(
    client: web.WebSocketResponse,
    link: BrowserLink,
    on_activity: Callable[[], None],
    on_close_request: Callable[[], Awaitable[None]],
) -> None:
    async for message in client:
        if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            continue
        on_activity()
        decision = decide(message.data)
        if isinstance(decision, Forward):
            link.send(decision.message)
            await link.drain()
        elif isinstance(decision, Refuse):
            link.reply(decision.reply)
        elif isinstance(decision, CloseSession):
            link.reply(decision.reply)
            await on_close_request()
            return
