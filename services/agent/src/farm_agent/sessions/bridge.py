"""Relays one attached client's CDP WebSocket to its session's browser, through the CDP filter.

Each client gets a connection of its own to the browser (Chromium serves several),
so clients never see each other's protocol sessions. Messages from the client pass
the filter; the browser's answers and events go back unchanged. Every message, in
either direction, counts as activity for the session's idle timeout.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from farm_agent.sessions.cdp_filter import CloseSession, Forward, Refuse, decide

log = logging.getLogger(__name__)

MAX_BROWSER_MESSAGE_BYTES = 256 * 1024 * 1024
"""A full-page screenshot of a long page can be large; CDP sends it as one message."""
MAX_CLIENT_MESSAGE_BYTES = 16 * 1024 * 1024
"""A client's commands are small; each is parsed by the filter, so they are bounded."""
CLOSE_REASON_BYTES = 120
"""A WebSocket close reason holds at most 123 bytes."""


async def bridge(
    client: web.WebSocketResponse,
    browser_endpoint: str,
    on_activity: Callable[[], None],
    on_close_request: Callable[[], Awaitable[None]],
) -> None:
    """Relays until either side closes; the browser's close ends the client's socket."""
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            browser_endpoint, max_msg_size=MAX_BROWSER_MESSAGE_BYTES, autoping=True
        ) as browser,
    ):
        to_browser = asyncio.create_task(
            _from_client(client, browser, on_activity, on_close_request)
        )
        to_client = asyncio.create_task(_from_browser(browser, client, on_activity))
        done, pending = await asyncio.wait(
            {to_browser, to_client}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in done:
            error = task.exception()
            if error is not None and not isinstance(error, ConnectionError):
                log.warning("a CDP relay ended with an error: %s", error)


async def close_client(client: web.WebSocketResponse, reason: str) -> None:
    """Ends a client's socket with a normal close frame that says why."""
    if not client.closed:
        message = reason.encode()[:CLOSE_REASON_BYTES]
        await client.close(code=aiohttp.WSCloseCode.OK, message=message)


async def _from_client(
    client: web.WebSocketResponse,
    browser: aiohttp.ClientWebSocketResponse,
    on_activity: Callable[[], None],
    on_close_request: Callable[[], Awaitable[None]],
) -> None:
    async for message in client:
        if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            continue
        on_activity()
        decision = decide(message.data)
        if isinstance(decision, Forward):
            await browser.send_str(decision.message)
        elif isinstance(decision, Refuse):
            await client.send_str(decision.reply)
        elif isinstance(decision, CloseSession):
            await client.send_str(decision.reply)
            await on_close_request()
            return


async def _from_browser(
    browser: aiohttp.ClientWebSocketResponse,
    client: web.WebSocketResponse,
    on_activity: Callable[[], None],
) -> None:
    async for message in browser:
        if message.type == aiohttp.WSMsgType.TEXT:
            on_activity()
            await client.send_str(message.data)
        elif message.type == aiohttp.WSMsgType.BINARY:
            on_activity()
            await client.send_bytes(message.data)
