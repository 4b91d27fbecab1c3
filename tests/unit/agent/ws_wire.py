"""The bridge's WebSockets on in-memory wires, for its unit tests: a link between a
client's wire and a browser's, and frames made and read as each side sends them."""

import asyncio
import struct

from farm_agent.sessions.browser_socket import BrowserLink
from farm_agent.sessions.ws_frames import OPCODE_CLOSE, frame


class Wire(asyncio.Transport):
    """A transport that keeps what is written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()
        self.closed = False
        self.paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.data += data

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A frame as a server sends it (unmasked); not its message's last unless `fin`."""
    data = frame(opcode, payload, mask=False)
    return data if fin else bytes([data[0] & 0x7F]) + data[1:]


def unmasked(data: bytes) -> list[tuple[int, bytes]]:
    """The (opcode, payload) of each masked client frame in `data`."""
    frames = []
    while data:
        size = data[1] & 0x7F
        start = 2 + (2 if size == 126 else 8 if size == 127 else 0)
        if size == 126:
            size = struct.unpack("!H", data[2:4])[0]
        elif size == 127:
            size = struct.unpack("!Q", data[2:10])[0]
        assert data[1] & 0x80, "a client's frame must be masked"
        key, payload = data[start : start + 4], data[start + 4 : start + 4 + size]
        frames.append((data[0] & 0x0F, bytes(b ^ key[i % 4] for i, b in enumerate(payload))))
        data = data[start + 4 + size :]
    return frames


async def open_link(max_frame_bytes: int = 1 << 20) -> tuple[BrowserLink, Wire, Wire, list[int]]:
    """An opened link, its client's and its browser's wires, and a mark for each activity."""
    client, browser, activity = Wire(), Wire(), []
    link = BrowserLink(client, lambda: activity.append(1), max_frame_bytes)
    link.connection_made(browser)
    link._opened.set_result(None)  # the handshake has its own test
    return link, client, browser, activity


def close_of(data: bytes) -> tuple[int, bytes]:
    """The code and reason of the server close frame that is all of `data`."""
    assert data[0] == 0x80 | OPCODE_CLOSE
    return struct.unpack("!H", data[2:4])[0], data[4:]
