"""The attached client's side of the bridge: its frames read here, its commands sent on as written.

After the WebSocket handshake, aiohttp's connection hands every byte the client sends
to `ClientFrames.feed_data`, in the same call that read it: no message objects, no
queue, no task to wake. Each whole message is unmasked (aiohttp's C routine) and
given to the CDP filter at once. A command the filter passes as the client wrote it
goes to the browser as the client's own frames: they are masked, as Chromium
expects a client's to be, so nothing is re-framed or re-masked. Anything else (a
command written anew, a refusal, a pong, a close) follows the WebSocket rules: a
frame of the agent's own reaches the client only between two of the browser's
messages (`BrowserLink.to_client`), and a message over the size limit, a frame
that breaks the protocol or the client's close ends the socket with a close frame.
"""

import asyncio
import struct
from collections.abc import Callable

from aiohttp._websocket.helpers import websocket_mask

from farm_agent.sessions.browser_socket import BrowserLink
from farm_agent.sessions.cdp_filter import Answer, CloseSession, Forward, Refuse, decide
from farm_agent.sessions.cdp_targets import TargetGuard
from farm_agent.sessions.ws_frames import (
    FIN,
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_CONTINUATION,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    frame,
)

CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR, CLOSE_POLICY_VIOLATION, CLOSE_TOO_BIG = 1000, 1002, 1008, 1009
CLOSE_REASON_BYTES = 120
"""A close frame's reason holds at most 123 bytes."""
MASK_BYTES = 4


def close_frame(code: int, reason: str) -> bytes:
    """A server's close frame with its code and (cut) reason."""
    return frame(
        OPCODE_CLOSE, struct.pack("!H", code) + reason.encode()[:CLOSE_REASON_BYTES], False
    )


class ClientFrames:
    """Reads one attached client's WebSocket frames (the parser aiohttp feeds) for the bridge.

    `ended` is done once the socket is closing (either side's close frame, a broken
    protocol, the connection gone); `client_closed` once the client sent its close or
    went away; `close_requested` once it asked the browser to close (the session closes).
    """

    def __init__(
        self,
        link: BrowserLink,
        on_activity: Callable[[], None],
        max_message_bytes: int,
        on_dialog_answer: Callable[[], None] = lambda: None,
        guard: TargetGuard | None = None,
    ) -> None:
        self.link = link
        self._guard = guard
        self._on_activity = on_activity
        self._on_dialog_answer = on_dialog_answer
        self._max_message_bytes = max_message_bytes
        loop = asyncio.get_running_loop()
        self.ended: asyncio.Future[None] = loop.create_future()
        self.close_requested: asyncio.Future[None] = loop.create_future()
        self.client_closed: asyncio.Future[None] = loop.create_future()
        self.close_sent = False
        self._pending = bytearray()  # the start of a frame that has not all come yet
        self._needed = 0  # how many bytes `_pending` must hold to be one whole frame
        self._message_opcode = 0  # of the fragmented message begun, 0 when none
        self._payloads: list[bytes] = []  # its unmasked fragments so far
        self._frames: list[bytes] = []  # and its frames as the client sent them
        self._message_bytes = 0

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        """Reads the frames in `data` (aiohttp's parser interface: never at its end)."""
        if self.ended.done():
            return False, b""
        if self._pending:
            self._pending += data
            if len(self._pending) < self._needed:
                return False, b""
            data, self._pending = bytes(self._pending), bytearray()
        position, size = 0, len(data)
        while position < size and not self.ended.done():
            length = self._frame_length(data, position, size)
            if length is None:
                self._pending += data[position:]
                break
            self._on_frame(data, position, length)
            position += length
        return False, b""

    def feed_eof(self) -> None:
        """The client's connection closed."""
        for future in (self.client_closed, self.ended):
            if not future.done():
                future.set_result(None)

    def end(self, code: int, reason: str) -> None:
        """Sends the client a close frame (once) and stops reading its frames."""
        if not self.close_sent:
            self.close_sent = True
            self.link.to_client(close_frame(code, reason))
        if not self.ended.done():
            self.ended.set_result(None)

    def _frame_length(self, data: bytes, position: int, size: int) -> int | None:
        """The whole length of the frame at `position`, if it is all in `data`."""
        available = size - position
        if available < 2:
            self._needed = 2
            return None
        first, second = data[position], data[position + 1]
        if first & 0x70 or not second & 0x80:
            self.end(CLOSE_PROTOCOL_ERROR, "a client's frames are masked, without extensions")
            return 0
        payload_length = second & 0x7F
        header = 2
        if payload_length == 126:
            header = 4
        elif payload_length == 127:
            header = 10
        if available < header:
            self._needed = header
            return None
        if header > 2:
            payload_length = int.from_bytes(data[position + 2 : position + header], "big")
        if payload_length + self._message_bytes > self._max_message_bytes:
            # Refused before its bytes are kept, however large it says it is.
            self.end(CLOSE_TOO_BIG, f"a message is limited to {self._max_message_bytes} bytes")
            return 0
        total = header + MASK_BYTES + payload_length
        if available < total:
            self._needed = total
            return None
        return total

    def _on_frame(self, data: bytes, position: int, length: int) -> None:
        if self.ended.done():
            return
        first, second = data[position], data[position + 1]
        opcode, final = first & 0x0F, bool(first & FIN)
        size_field = second & 0x7F
        start = position + 2 + (2 if size_field == 126 else 8 if size_field == 127 else 0)
        start += MASK_BYTES
        payload = bytearray(data[start : position + length])
        websocket_mask(bytes(data[start - MASK_BYTES : start]), payload)
        if opcode >= OPCODE_CLOSE:
            self._on_control(opcode, final, bytes(payload))
            return
        if (opcode == OPCODE_CONTINUATION) != bool(self._message_opcode) or opcode not in (
            OPCODE_CONTINUATION,
            OPCODE_TEXT,
            OPCODE_BINARY,
        ):
            self.end(CLOSE_PROTOCOL_ERROR, f"unexpected frame of opcode {opcode}")
            return
        whole = data[position : position + length]
        if final and not self._message_opcode:
            self._on_message(opcode, bytes(payload), whole)
            return
        self._message_opcode = self._message_opcode or opcode
        self._payloads.append(bytes(payload))
        self._frames.append(whole)
        self._message_bytes += len(payload)
        if final:
            opcode, payloads, frames = self._message_opcode, self._payloads, self._frames
            self._message_opcode, self._payloads, self._frames = 0, [], []
            self._message_bytes = 0
            self._on_message(opcode, b"".join(payloads), b"".join(frames))

    def _on_control(self, opcode: int, final: bool, payload: bytes) -> None:
        if (
            not final
            or len(payload) > 125
            or opcode not in (OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG)
        ):
            self.end(CLOSE_PROTOCOL_ERROR, f"a bad control frame of opcode {opcode}")
        elif opcode == OPCODE_PING:
            self.link.to_client(frame(OPCODE_PONG, payload, mask=False))
        elif opcode == OPCODE_CLOSE:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else CLOSE_NORMAL
            if not self.client_closed.done():
                self.client_closed.set_result(None)
            self.end(code if _may_be_sent(code) else CLOSE_PROTOCOL_ERROR, "")

    def _on_message(self, opcode: int, payload: bytes, frames: bytes) -> None:
        """A whole message: the filter decides whether it goes to the browser."""
        if self.close_requested.done():
            return  # the session is closing; only the client's close is still read
        self._on_activity()
        link = self.link
        decision = decide(payload, self._guard)
        if isinstance(decision, Forward):
            if decision.method == DIALOG_ANSWER_METHOD:
                self._on_dialog_answer()
            if decision.as_sent and opcode == OPCODE_TEXT:
                link.forward(frames)
            else:
                link.send(decision.message)
        elif isinstance(decision, Refuse | Answer):
            link.reply(decision.reply)
        elif isinstance(decision, CloseSession):
            link.reply(decision.reply)
            self.close_requested.set_result(None)


DIALOG_ANSWER_METHOD = "Page.handleJavaScriptDialog"
"""A client answering a page's dialog itself: the session's own wait for an answer ends."""


def _may_be_sent(code: int) -> bool:
    """Whether a close code may be sent in a close frame (RFC 6455, 7.4)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999
