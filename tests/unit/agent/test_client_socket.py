"""The attached client's frames: read whole however they arrive, filtered, sent on as written."""

import json
import struct

import pytest

from farm_agent.sessions.browser_socket import BrowserLink
from farm_agent.sessions.client_socket import ClientFrames
from farm_agent.sessions.ws_frames import (
    OPCODE_CLOSE,
    OPCODE_CONTINUATION,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    frame,
)
from tests.unit.agent.ws_wire import Wire, close_of, open_link, server_frame, unmasked

COMMAND = b'{"id":1,"method":"Runtime.evaluate","params":{"expression":"1+1"}}'


async def reader(max_message_bytes: int = 1 << 20) -> tuple[ClientFrames, BrowserLink, Wire, Wire]:
    link, client, browser, _ = await open_link()
    return ClientFrames(link, lambda: None, max_message_bytes), link, client, browser


def client_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    data = frame(opcode, payload, mask=True)
    return data if fin else bytes([data[0] & 0x7F]) + data[1:]


def text_of(data: bytes) -> object:
    """The JSON in the one unmasked text frame that is all of `data`."""
    size = data[1] & 0x7F
    return json.loads(data[2 + (2 if size == 126 else 8 if size == 127 else 0) :])


@pytest.mark.parametrize("sizes", [[], [1], [1, 1, 1, 1, 1, 1], [7, 30], list(range(1, 12))])
async def test_a_command_goes_to_the_browser_as_the_clients_own_frame_however_split(
    sizes: list[int],
) -> None:
    frames, _, client, browser = await reader()
    data = client_frame(OPCODE_TEXT, COMMAND)
    rest = data
    for size in sizes:
        frames.feed_data(rest[:size])
        rest = rest[size:]
    if rest:
        frames.feed_data(rest)
    assert bytes(browser.data) == data
    assert client.data == b""


async def test_a_fragmented_command_is_checked_whole_and_passes_as_its_frames() -> None:
    frames, _, _, browser = await reader()
    pieces = (
        client_frame(OPCODE_TEXT, COMMAND[:10], fin=False)
        + client_frame(OPCODE_CONTINUATION, COMMAND[10:30], fin=False)
        + client_frame(OPCODE_CONTINUATION, COMMAND[30:])
    )
    frames.feed_data(pieces[:25])
    assert browser.data == b""
    frames.feed_data(pieces[25:])
    assert bytes(browser.data) == pieces


async def test_a_command_in_another_spelling_goes_on_written_anew() -> None:
    frames, _, _, browser = await reader()
    frames.feed_data(client_frame(OPCODE_TEXT, b'{"id": 1, "method": "Page.enable"}'))
    assert unmasked(bytes(browser.data)) == [(OPCODE_TEXT, b'{"id":1,"method":"Page.enable"}')]


async def test_a_refused_command_is_answered_to_the_client_and_kept_from_the_browser() -> None:
    frames, _, client, browser = await reader()
    command = {"id": 5, "method": "DOM.setFileInputFiles", "params": {"files": ["/etc/passwd"]}}
    frames.feed_data(client_frame(OPCODE_TEXT, json.dumps(command).encode()))
    assert browser.data == b""
    reply = text_of(bytes(client.data))
    assert isinstance(reply, dict)
    assert reply["id"] == 5 and "not allowed" in reply["error"]["message"]


async def test_a_ping_is_answered_between_the_browsers_messages() -> None:
    frames, link, client, _ = await reader()
    half = server_frame(OPCODE_TEXT, b"x" * 50)
    link.data_received(half[:20])
    frames.feed_data(client_frame(OPCODE_PING, b"hi"))
    assert bytes(client.data) == half[:20]
    link.data_received(half[20:])
    assert bytes(client.data) == half + frame(OPCODE_PONG, b"hi", mask=False)


@pytest.mark.parametrize(
    ("code", "answer"), [(1001, 1001), (4000, 4000), (1005, 1002), (999, 1002)]
)
async def test_the_clients_close_is_answered_and_ends_the_reading(code: int, answer: int) -> None:
    frames, _, client, browser = await reader()
    frames.feed_data(
        client_frame(OPCODE_CLOSE, struct.pack("!H", code)) + client_frame(OPCODE_TEXT, COMMAND)
    )
    assert frames.ended.done() and frames.client_closed.done()
    assert close_of(bytes(client.data)) == (answer, b"")
    assert browser.data == b""


async def test_a_message_over_the_limit_closes_the_socket_before_its_bytes_are_kept() -> None:
    frames, _, client, browser = await reader(max_message_bytes=100)
    # Its header alone says it is too large.
    frames.feed_data(client_frame(OPCODE_TEXT, b"[" + b" " * 200 + b"]")[:8])
    assert frames.ended.done()
    assert close_of(bytes(client.data))[0] == 1009
    assert browser.data == b""


async def test_fragments_count_together_against_the_limit() -> None:
    frames, _, client, browser = await reader(max_message_bytes=100)
    frames.feed_data(client_frame(OPCODE_TEXT, b" " * 60, fin=False))
    frames.feed_data(client_frame(OPCODE_CONTINUATION, b" " * 60))
    assert close_of(bytes(client.data))[0] == 1009
    assert browser.data == b""


@pytest.mark.parametrize(
    "bad",
    [
        frame(OPCODE_TEXT, COMMAND, mask=False),
        client_frame(OPCODE_CONTINUATION, COMMAND),
        client_frame(OPCODE_PING, b"p", fin=False),
        client_frame(0x3, COMMAND),
    ],
    ids=["unmasked", "continuation-first", "fragmented-ping", "unknown-opcode"],
)
async def test_a_frame_outside_the_protocol_closes_the_socket(bad: bytes) -> None:
    frames, _, client, browser = await reader()
    frames.feed_data(bad)
    assert frames.ended.done()
    assert close_of(bytes(client.data))[0] == 1002
    assert browser.data == b""


async def test_browser_close_is_answered_here_and_asks_for_the_session_to_close() -> None:
    frames, _, client, browser = await reader()
    frames.feed_data(client_frame(OPCODE_TEXT, b'{"id":9,"method":"Browser.close"}'))
    assert frames.close_requested.done()
    assert text_of(bytes(client.data)) == {"id": 9, "result": {}}
    # Nothing more goes to the browser, but the client's close is still heard.
    frames.feed_data(client_frame(OPCODE_TEXT, COMMAND) + client_frame(OPCODE_CLOSE, b""))
    assert browser.data == b""
    assert frames.client_closed.done()


async def test_a_browser_slow_to_read_stops_the_reading_of_the_client_until_it_catches_up() -> None:
    _, link, client, _ = await reader()
    link.pause_writing()
    assert client.paused
    link.resume_writing()
    assert not client.paused
