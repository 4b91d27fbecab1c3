"""A minimal HTTP/1.1 client on persistent connections, cheap enough to load the farm.

A general client (httpx) spends milliseconds of CPU per request on the same cores as
the farm it measures, so the bench's own clients set the rate they measure. This one
sends a request whose bytes were built once, reads the status line, the headers and a
Content-Length or chunked body, and keeps the connection open for the next request,
as any keep-alive HTTP/1.1 client does. It speaks plain http:// only.
"""

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

_HEAD_END = b"\r\n\r\n"
_LINE_END = b"\r\n"


@dataclass(frozen=True)
class Response:
    """A response's status code and body."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def json_request(url: str, method: str, path: str, body: Any, headers: dict[str, str]) -> bytes:
    """The bytes of an HTTP/1.1 request with `body` as JSON, to be sent as often as needed."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {urlsplit(url).netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return "\r\n".join(lines).encode() + _HEAD_END + payload


class Connection:
    """One keep-alive HTTP/1.1 connection; one request at a time on it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"only http:// URLs, got {url}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> Response:
        """Sends `request` (from `json_request`) and reads its whole response."""
        if self._writer is None or self._reader is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._reader, self._writer
        writer.write(request)
        head = await reader.readuntil(_HEAD_END)
        status = int(head[9:12])
        length, chunked, closes = _framing(head)
        body = await (_read_chunks(reader) if chunked else reader.readexactly(length))
        if closes:
            await self.close()
        return Response(status, body)

    async def close(self) -> None:
        """Closes the connection; the next `send` opens a new one."""
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()
        self._reader = self._writer = None


def _framing(head: bytes) -> tuple[int, bool, bool]:
    """(Content-Length, chunked?, connection closes?) from a response's head."""
    length, chunked, closes = 0, False, False
    for line in head.split(_LINE_END)[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            closes = b"close" in value.lower()
    return length, chunked, closes


async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
    """A chunked body (trailers skipped)."""
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(_LINE_END)).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(_LINE_END) != _LINE_END:
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(len(_LINE_END))
