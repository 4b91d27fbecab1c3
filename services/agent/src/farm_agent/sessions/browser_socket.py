"""The bridge's own WebSocket to a session's browser, whose frames go to the client as bytes.

The browser's answers and events pass to the attached client unchanged, so they are
not decoded and re-encoded here: Chromium's frames are server frames (unmasked, no
extension is offered to it), exactly what the agent sends its client as a server, so
each data frame is written to the client's connection as it arrived. Only frame
headers are read, to keep the stream whole: a frame the agent writes itself (a
refused command's answer) goes between two messages, never inside one. Control
frames stay here: a ping is answered, a close ends the link. The few messages an
`Inspector` wants (they name targets) are held until whole and go on as it rewrites them.
"""

import asyncio
import base64
import hashlib
import os
from collections.abc import Callable
from typing import Protocol, cast
from urllib.parse import urlsplit

from farm_agent.sessions.ws_frames import (
    FIN,
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_CONTINUATION,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    frame,
    header_length,
)

WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HANDSHAKE_LIMIT_BYTES = 16 * 1024
BUFFER_HIGH_BYTES = 4 * 1024 * 1024
"""Reading from the browser pauses while this much waits to go to a slow client."""
BUFFER_POLL_SECONDS = 0.005
PEEK_BYTES = 40


class Inspector(Protocol):
    """Reads the messages it `wants` (by their first PEEK_BYTES) whole; `rewrite` may drop them."""

    def wants(self, prefix: bytes) -> bool: ...

    def rewrite(self, payload: bytes) -> bytes | None: ...


class BrowserLinkError(ConnectionError):
    """The browser's socket broke the WebSocket protocol or closed during the handshake."""


class BrowserLink(asyncio.Protocol):
    """A WebSocket client connection to the browser that writes its data frames to `client`."""

    def __init__(
        self,
        client: asyncio.Transport,
        on_activity: Callable[[], None],
        max_frame_bytes: int,
    ) -> None:
        self._client = client
        self._on_activity = on_activity
        self._max_frame_bytes = max_frame_bytes
        self._transport: asyncio.Transport | None = None
        self._handshake = bytearray()
        self._key = base64.b64encode(os.urandom(16))
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._header = bytearray()
        self._left = 0  # payload bytes of the current frame still to come
        self._passing = True  # the current frame goes to the client
        self._control = bytearray()  # the current control frame's payload
        self._control_opcode = 0
        self._in_message = False  # a fragmented message has begun and not ended
        self._held: list[bytes] = []  # the agent's own frames, waiting for a message's end
        self._writable = asyncio.Event()
        self._writable.set()
        self.inspector: Inspector | None = None
        self._peek: bytearray | None = None  # a text frame held back: its header and payload
        self._peek_start = 0  # where its payload begins
        self._deciding = False  # whether the inspector has yet to see its first bytes

    async def open(self, endpoint: str) -> None:
        """Connects and completes the WebSocket handshake with `endpoint` (ws://host:port/path)."""
        url = urlsplit(endpoint)
        if url.scheme != "ws" or not url.hostname or not url.port:
            raise BrowserLinkError(f"not a browser's DevTools address: {endpoint}")
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self, url.hostname, url.port)
        assert self._transport is not None
        self._transport.write(
            f"GET {url.path or '/'} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self._key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await self._opened

    def send(self, message: str | bytes) -> None:
        """Sends the client's message (already filtered) to the browser."""
        opcode = OPCODE_TEXT if isinstance(message, str) else OPCODE_BINARY
        payload = message.encode() if isinstance(message, str) else message
        self.forward(frame(opcode, payload, mask=True))

    def forward(self, frames: bytes | memoryview) -> None:
        """Sends the browser a client's frames as they are (masked, one whole message)."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(frames)

    @property
    def browser_reading(self) -> bool:
        """Whether the browser keeps up with what is sent to it (no write backlog)."""
        return self._writable.is_set()

    def reply(self, message: str) -> None:
        """Sends the client a text message of the agent's own, between the browser's messages."""
        self.to_client(frame(OPCODE_TEXT, message.encode(), mask=False))

    @property
    def cut_mid_message(self) -> bool:
        """Whether the browser went away in the middle of a message to the client.

        The client's stream then ends inside a message: no frame of the agent's own,
        a close frame included, can follow it.
        """
        return self.closed.done() and (self._in_message or self._streaming_frame)

    @property
    def _streaming_frame(self) -> bool:
        """Whether part of a frame has gone to the client and the rest has not."""
        return bool(self._left and self._passing and self._peek is None)

    def to_client(self, data: bytes) -> None:
        """Writes a whole frame of the agent's own to the client, between the browser's messages.

        Once the browser is gone in the middle of a message, the client's stream cannot
        be made whole again, so the frame is dropped (its connection is closed next).
        """
        if self._in_message or self._streaming_frame:
            if not self.closed.done():
                self._held.append(data)
        else:
            self._write_client(data)

    def _write_client(self, data: bytes | memoryview) -> None:
        # A client gone without a close (killed, cut off) reads nothing more, and uvloop
        # raises on a write to a closed connection where asyncio's transports ignore it.
        if not self._client.is_closing():
            self._client.write(data)

    def close(self) -> None:
        """Ends the connection to the browser."""
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection's transport; uvloop's do not subclass asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._opened.done():
            self._opened.set_exception(
                exc or BrowserLinkError("the browser closed its DevTools socket")
            )
        if not self.closed.done():
            self.closed.set_result(None)
        self._writable.set()
        if not self._client.is_closing():
            self._client.resume_reading()

    def pause_writing(self) -> None:
        # The browser reads slower than the client writes: stop reading the client.
        self._writable.clear()
        self._client.pause_reading()

    def resume_writing(self) -> None:
        self._writable.set()
        if not self._client.is_closing():
            self._client.resume_reading()

    def data_received(self, data: bytes) -> None:
        if not self._opened.done():
            data = self._take_handshake(data)
            if not data:
                return
        try:
            self._relay(memoryview(data))
        except BrowserLinkError as error:
            self._fail(error)
            return
        self._on_activity()
        if self._client.get_write_buffer_size() > BUFFER_HIGH_BYTES:
            self._pause_until_client_reads()

    def _take_handshake(self, data: bytes) -> bytes:
        """Reads the handshake's answer; returns the bytes after it (frames)."""
        self._handshake += data
        end = self._handshake.find(b"\r\n\r\n")
        if end < 0:
            if len(self._handshake) > HANDSHAKE_LIMIT_BYTES:
                self._fail(BrowserLinkError("the browser's handshake answer is too long"))
            return b""
        head, rest = bytes(self._handshake[:end]), bytes(self._handshake[end + 4 :])
        self._handshake.clear()
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        accept = base64.b64encode(hashlib.sha1(self._key + WEBSOCKET_GUID).digest()).decode()
        if (
            lines[0].split(" ")[1:2] != ["101"]
            or headers.get("sec-websocket-accept") != accept
            or headers.get("sec-websocket-extensions")
        ):
            self._fail(BrowserLinkError(f"the browser refused the WebSocket: {lines[0]}"))
            return b""
        self._opened.set_result(None)
        return rest

    def _relay(self, data: memoryview) -> None:
        """Passes the data frames in `data` on to the client; keeps control frames here."""
        pieces: list[bytes | memoryview] = []
        # Where the run of bytes to pass on began in `data`: at once when a frame
        # that passes goes on from the last chunk.
        mark: int | None = 0 if self._streaming_frame else None
        position, size = 0, len(data)
        while position < size:
            if self._left:
                step = min(self._left, size - position)
                if self._peek is not None:
                    self._peek += data[position : position + step]
                elif not self._passing:
                    self._control += data[position : position + step]
                position += step
                self._left -= step
                if self._peek is not None:
                    mark = self._look(pieces, position)
                if not self._left:
                    mark = self._end_frame(data, pieces, mark, position)
                continue
            carried = len(self._header)
            header_start = position
            needed = header_length(self._header) or 2
            while len(self._header) < needed and position < size:
                self._header.append(data[position])
                position += 1
                needed = header_length(self._header) or 2
            if len(self._header) < needed:
                position = header_start  # the header's start waits for the next chunk
                break
            passing = self._begin_frame(self._header)
            if passing and self._peek is not None and self._passes_at_once(data, position):
                self._peek = None
            if passing and self._peek is not None:
                if mark is not None:
                    pieces.append(data[mark:header_start])
                mark = self._look(pieces, position)
            elif passing:
                if carried:
                    pieces.append(bytes(self._header[:carried]))
                    mark = header_start
                elif mark is None:
                    mark = header_start
            elif mark is not None:
                pieces.append(data[mark:header_start])
                mark = None
            self._header.clear()
            if not self._left:
                mark = self._end_frame(data, pieces, mark, position)
        if mark is not None and mark < position:
            pieces.append(data[mark:position])
        if len(pieces) == 1:
            self._write_client(pieces[0])
        elif pieces:
            self._write_client(b"".join(pieces))

    def _begin_frame(self, header: bytearray) -> bool:
        """Reads a frame's header; whether the frame passes to the client."""
        first, second = header[0], header[1]
        if first & 0x70 or second & 0x80:
            raise BrowserLinkError("the browser sent a masked or extended frame")
        size = second & 0x7F
        length = size if size < 126 else int.from_bytes(header[2:], "big")
        if length > self._max_frame_bytes:
            raise BrowserLinkError(f"the browser sent a frame of {length} bytes")
        opcode = first & 0x0F
        self._left = length
        self._passing = opcode in (OPCODE_CONTINUATION, OPCODE_TEXT, OPCODE_BINARY)
        if self._passing:
            if opcode == OPCODE_TEXT and self.inspector is not None:
                self._peek, self._peek_start, self._deciding = bytearray(header), len(header), True
            self._in_message = not first & FIN
        else:
            if opcode not in (OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG) or length > 125:
                raise BrowserLinkError(f"the browser sent a frame of opcode {opcode}")
            self._control_opcode = opcode
            self._control.clear()
        return self._passing

    def _passes_at_once(self, data: memoryview, position: int) -> bool:
        """Whether a text frame whose first bytes are all in `data` is one to pass unread."""
        end = position + min(self._left, PEEK_BYTES)
        if end > len(data) or (self._in_message and self._left < PEEK_BYTES):
            return False
        assert self.inspector is not None
        return not self.inspector.wants(bytes(data[position:end]))

    def _look(self, pieces: list[bytes | memoryview], position: int) -> int | None:
        """Lets the inspector see the held frame; where the run to pass on begins, if it does."""
        assert self._peek is not None and self.inspector is not None
        start = self._peek_start
        if self._deciding:
            if len(self._peek) - start < PEEK_BYTES and self._left:
                return None
            self._deciding = False
            if self._in_message and len(self._peek) - start < PEEK_BYTES:
                raise BrowserLinkError("the browser split a message too early for the CDP filter")
            if not self.inspector.wants(bytes(self._peek[start : start + PEEK_BYTES])):
                pieces.append(bytes(self._peek))
                self._peek = None
                return position
        if self._left:
            return None
        payload = bytes(self._peek[start:])
        if self._in_message:
            # Chromium never splits a message; one the filter must read is not passed in parts.
            raise BrowserLinkError("the browser split a message the CDP filter reads")
        kept = self.inspector.rewrite(payload)
        if kept is payload:
            pieces.append(bytes(self._peek))
        elif kept is not None:
            pieces.append(frame(OPCODE_TEXT, kept, mask=False))
        self._peek = None
        return position

    def _end_frame(
        self, data: memoryview, pieces: list[bytes | memoryview], mark: int | None, position: int
    ) -> int | None:
        """A frame has ended at `position`: acts on a control frame, lets held replies out."""
        if not self._passing:
            if self._control_opcode == OPCODE_CLOSE:
                self.close()
            elif self._control_opcode == OPCODE_PING:
                self.send_control(OPCODE_PONG, bytes(self._control))
            self._passing = True
            return mark
        if self._in_message or not self._held:
            return mark
        if mark is not None:
            pieces.append(data[mark:position])
        pieces.extend(self._held)
        self._held.clear()
        return position

    def send_control(self, opcode: int, payload: bytes) -> None:
        """A control frame to the browser."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(frame(opcode, payload, mask=True))

    def _pause_until_client_reads(self) -> None:
        assert self._transport is not None
        self._transport.pause_reading()
        loop = asyncio.get_running_loop()

        def check() -> None:
            if self._transport is None or self._transport.is_closing():
                return
            if self._client.is_closing() or self._client.get_write_buffer_size() <= (
                BUFFER_HIGH_BYTES // 4
            ):
                self._transport.resume_reading()
            else:
                loop.call_later(BUFFER_POLL_SECONDS, check)

        loop.call_later(BUFFER_POLL_SECONDS, check)

    def _fail(self, error: BrowserLinkError) -> None:
        if not self._opened.done():
            self._opened.set_exception(error)
        if not self.closed.done():
            self.closed.set_exception(error)
        self.close()
