"""WebSocket frames as the bridge writes and reads them (RFC 6455): opcodes, building, headers."""

import os
import struct

# aiohttp's C routine (a pure-Python one where its extensions are off); it is not
# exported elsewhere, and no other dependency of the agent ships one.
from aiohttp._websocket.helpers import websocket_mask

OPCODE_CONTINUATION, OPCODE_TEXT, OPCODE_BINARY = 0x0, 0x1, 0x2
OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG = 0x8, 0x9, 0xA
FIN = 0x80


def frame(opcode: int, payload: bytes, mask: bool) -> bytes:
    """One final frame; a client's (to the browser) is masked with a fresh key."""
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = struct.pack("!BB", FIN | opcode, mask_bit | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", FIN | opcode, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", FIN | opcode, mask_bit | 127, length)
    if not mask:
        return header + payload
    key = os.urandom(4)
    masked = bytearray(payload)
    websocket_mask(key, masked)
    return header + key + masked


def header_length(header: bytes | bytearray) -> int | None:
    """How long a server frame's header is, once its first two bytes are there."""
    if len(header) < 2:
        return None
    size = header[1] & 0x7F
    return 2 + (2 if size == 126 else 8 if size == 127 else 0)
