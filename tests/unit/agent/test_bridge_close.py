"""Closing an attached client's socket: a close frame, then a wait for the client's close."""

import asyncio
from typing import Any, cast

from farm_agent.sessions.bridge import CdpClient, close_client
from farm_agent.sessions.client_socket import ClientFrames
from farm_agent.sessions.ws_frames import OPCODE_TEXT
from tests.unit.agent.ws_wire import Wire, close_of, open_link, server_frame


async def attached_client(received_from_browser: bytes) -> tuple[CdpClient, ClientFrames, Wire]:
    """A client whose browser sent `received_from_browser`, then closed its socket."""
    link, wire, _, _ = await open_link()
    frames = ClientFrames(link, lambda: None, 1 << 20)
    link.data_received(received_from_browser)
    link.connection_lost(None)
    return CdpClient(wire, cast(Any, None), frames), frames, wire


async def steps_until_done(closing: asyncio.Task[None], steps: int = 20) -> bool:
    """Whether `closing` ends within a few turns of the event loop (no timer runs out)."""
    for _ in range(steps):
        if closing.done():
            return True
        await asyncio.sleep(0)
    return closing.done()


async def test_between_messages_the_close_frame_goes_and_the_clients_close_is_awaited() -> None:
    whole = server_frame(OPCODE_TEXT, b"whole")
    client, frames, wire = await attached_client(whole)
    closing = asyncio.create_task(close_client(client, "session closed"))
    assert not await steps_until_done(closing)
    assert close_of(bytes(wire.data[len(whole) :])) == (1000, b"session closed")
    frames.feed_eof()
    await closing
    assert wire.closed


async def test_inside_a_message_the_socket_is_closed_without_waiting_for_the_client() -> None:
    half = server_frame(OPCODE_TEXT, b"z" * 1000)[:500]
    client, _, wire = await attached_client(half)
    closing = asyncio.create_task(close_client(client, "session closed"))
    assert await steps_until_done(closing)
    assert wire.closed
    assert bytes(wire.data) == half
