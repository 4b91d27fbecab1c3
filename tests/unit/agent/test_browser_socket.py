"""The bridge's WebSocket to the browser: its frames reach the client whole and in order."""

import asyncio

import pytest

from farm_agent.sessions.browser_socket import BrowserLink, BrowserLinkError
from farm_agent.sessions.ws_frames import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_CONTINUATION,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    frame,
)
from tests.unit.agent.ws_wire import Wire, open_link, server_frame, unmasked


def feed(link: BrowserLink, data: bytes, sizes: list[int]) -> None:
    """Feeds `data` in chunks of the given sizes (the rest in one)."""
    for size in sizes:
        link.data_received(data[:size])
        data = data[size:]
    if data:
        link.data_received(data)


MESSAGES = (
    server_frame(OPCODE_TEXT, b'{"id":1,"result":{}}')
    + server_frame(OPCODE_TEXT, b"x" * 300)
    + server_frame(OPCODE_BINARY, b"y" * 70000)
    + server_frame(OPCODE_TEXT, b"")
)


@pytest.mark.parametrize(
    "sizes",
    [[], [1], [1, 1, 1, 1], [3, 20, 1, 300], [len(MESSAGES) - 1], list(range(1, 40))],
)
async def test_the_browsers_frames_reach_the_client_as_they_are_however_split(
    sizes: list[int],
) -> None:
    link, client, _, activity = await open_link()
    feed(link, MESSAGES, sizes)
    assert bytes(client.data) == MESSAGES
    assert activity


async def test_a_ping_is_answered_and_kept_from_the_client() -> None:
    link, client, browser, _ = await open_link()
    hello = server_frame(OPCODE_TEXT, b"hello")
    feed(link, hello + server_frame(OPCODE_PING, b"are you there") + hello, [len(hello) + 3])
    assert bytes(client.data) == hello + hello
    assert unmasked(bytes(browser.data)) == [(OPCODE_PONG, b"are you there")]


async def test_a_close_from_the_browser_ends_the_link_and_is_not_passed_on() -> None:
    link, client, browser, _ = await open_link()
    link.data_received(server_frame(OPCODE_CLOSE, b"\x03\xe8bye"))
    assert browser.closed
    assert client.data == b""


@pytest.mark.parametrize(
    ("received", "cut"),
    [
        (b"", False),
        (server_frame(OPCODE_TEXT, b"whole"), False),
        (server_frame(OPCODE_TEXT, b"z" * 1000)[:500], True),
        (server_frame(OPCODE_TEXT, b"first part", fin=False), True),
    ],
)
async def test_a_browser_gone_inside_a_message_is_told_from_one_gone_between(
    received: bytes, cut: bool
) -> None:
    link, _, _, _ = await open_link()
    link.data_received(received)
    assert not link.cut_mid_message
    link.connection_lost(None)
    assert link.cut_mid_message is cut


async def test_the_agents_reply_waits_for_the_end_of_a_message_in_pieces() -> None:
    link, client, _, _ = await open_link()
    first = server_frame(OPCODE_TEXT, b"part one ", fin=False)
    middle = server_frame(OPCODE_CONTINUATION, b"part two", fin=False)
    last = server_frame(OPCODE_CONTINUATION, b" and end")
    feed(link, first + middle[:4], [])
    link.reply('{"id":3,"error":{}}')
    link.data_received(middle[4:])
    link.reply('{"id":4,"error":{}}')
    assert bytes(client.data) == first + middle
    link.data_received(last)
    replies = server_frame(OPCODE_TEXT, b'{"id":3,"error":{}}') + server_frame(
        OPCODE_TEXT, b'{"id":4,"error":{}}'
    )
    assert bytes(client.data) == first + middle + last + replies


async def test_the_agents_reply_waits_for_the_end_of_a_frame_in_pieces() -> None:
    link, client, _, _ = await open_link()
    big = server_frame(OPCODE_TEXT, b"z" * 1000)
    link.data_received(big[:500])
    link.reply("refused")
    link.data_received(big[500:])
    assert bytes(client.data) == big + server_frame(OPCODE_TEXT, b"refused")


async def test_a_reply_between_messages_goes_at_once() -> None:
    link, client, _, _ = await open_link()
    link.reply("refused")
    assert bytes(client.data) == server_frame(OPCODE_TEXT, b"refused")


@pytest.mark.parametrize(
    "bad",
    [
        frame(OPCODE_TEXT, b"masked", mask=True),
        bytes([0x80 | 0x40 | OPCODE_TEXT, 1]) + b"x",  # compressed (RSV1), none was agreed
        server_frame(0x3, b"unknown opcode"),
        server_frame(OPCODE_PING, b"p" * 126),
        server_frame(OPCODE_TEXT, b"t" * 2000),
    ],
    # The masked frame's key is random: ids by name keep every worker's collection alike.
    ids=["masked", "compressed", "unknown-opcode", "long-ping", "oversized"],
)
async def test_a_frame_outside_the_protocol_ends_the_link_and_passes_nothing(bad: bytes) -> None:
    link, client, browser, _ = await open_link(max_frame_bytes=1000)
    link.data_received(bad)
    assert browser.closed
    assert client.data == b""
    with pytest.raises(BrowserLinkError):
        await link.closed


async def test_the_clients_messages_go_to_the_browser_masked() -> None:
    link, _, browser, _ = await open_link()
    link.send('{"id":1,"method":"Page.enable"}')
    link.send(b"\x00binary" * 20000)
    assert unmasked(bytes(browser.data)) == [
        (OPCODE_TEXT, b'{"id":1,"method":"Page.enable"}'),
        (OPCODE_BINARY, b"\x00binary" * 20000),
    ]


def test_the_handshake_checks_the_browsers_answer() -> None:
    async def answer(text: bytes) -> tuple[bytes, BaseException | None]:
        link = BrowserLink(Wire(), lambda: None, 1000)
        link._key = b"dGhlIHNhbXBsZSBub25jZQ=="  # the example of RFC 6455, 1.3
        rest = link._take_handshake(text)
        return rest, link._opened.exception() if link._opened.done() else None

    good = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    assert asyncio.run(answer(good + b"\x81\x00")) == (b"\x81\x00", None)
    wrong_key = good.replace(b"s3pP", b"AAAA")
    assert isinstance(asyncio.run(answer(wrong_key))[1], BrowserLinkError)
    deflate = good.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
    assert isinstance(asyncio.run(answer(deflate))[1], BrowserLinkError)
