"""HTTP/1.1 proxy plumbing for the egress guard: request heads, short answers, byte relays."""

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit

CHUNK_BYTES = 64 * 1024
# Headers that concern only the hop from Chromium to the proxy.
_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer"}
)


@dataclass(frozen=True)
class RequestHead:
    """The request line and headers Chromium sent the proxy."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]

    @classmethod
    def parse(cls, head: bytes) -> "RequestHead | None":
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return None
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, separator, value = line.partition(":")
            if not separator:
                return None
            headers.append((name.strip(), value.strip()))
        return cls(parts[0].upper(), parts[1], parts[2], headers)

    def origin_form(self, path: str) -> bytes:
        """The request as sent to the host: origin-form path, no proxy headers, one request."""
        listed = {
            token.strip().lower()
            for name, value in self.headers
            if name.lower() == "connection"
            for token in value.split(",")
        }
        upgrade = "upgrade" in listed and any(n.lower() == "upgrade" for n, _ in self.headers)
        kept = [
            (name, value)
            for name, value in self.headers
            if name.lower() not in _HOP_HEADERS and name.lower() not in listed - {"upgrade"}
        ]
        if not upgrade:
            kept = [(name, value) for name, value in kept if name.lower() != "upgrade"]
        kept.append(("Connection", "Upgrade" if upgrade else "close"))
        lines = [f"{self.method} {path} {self.version}", *(f"{n}: {v}" for n, v in kept)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def host_port(host: str, port: int) -> str:
    """The authority "host:port", with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def url_host_port(url: str) -> tuple[str, int]:
    """("host", port) of a URL, the scheme's default port if it names none; ("", 0) if bad."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return "", 0
    default = 443 if parts.scheme in ("https", "wss") else 80
    return parts.hostname or "", port or default


def target_host_port(target: str) -> str:
    """The "host:port" of a refused target, which is "host:port" or an http URL."""
    if "://" not in target:
        return target
    host, port = url_host_port(target)
    return host_port(host, port) if host else target


def split_authority(authority: str, default_port: int) -> tuple[str, int]:
    """("host", port) of "host:port" or "[v6]:port"."""
    url = urlsplit(f"//{authority}")
    if not url.hostname:
        raise ValueError(authority)
    return url.hostname, url.port or default_port


async def answer(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    """A short plain-text answer from the proxy itself; the connection closes after it."""
    phrase = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    body = f"farm agent egress guard: {text}\n".encode()
    writer.write(
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError, OSError):
        await writer.drain()


async def relay(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
    *,
    rewrite_response: bool = False,
) -> None:
    """Copies bytes both ways until the host's side ends; then both connections close."""
    upload = asyncio.create_task(pipe(client_reader, upstream_writer))
    try:
        if rewrite_response:
            await pass_response_head(upstream_reader, client_writer)
        await pipe(upstream_reader, client_writer)
    finally:
        upload.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await upload
        upstream_writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await upstream_writer.wait_closed()


async def pass_response_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The response head with `Connection: close`, so Chromium sends its next request anew.

    Interim answers (100 Continue) pass as they are, up to the final one; a 101 switches
    the connection to the WebSocket and passes unchanged.
    """
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)[1] if lines[0].count(" ") else ""
        if status == "101" or not status.startswith("1"):
            break
        writer.write(head)
    if status == "101":
        writer.write(head)
        return
    kept = [
        line
        for line in lines[1:]
        if line and line.split(":", 1)[0].strip().lower() not in ("connection", "keep-alive")
    ]
    writer.write(
        ("\r\n".join([lines[0], *kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1")
    )


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies until end of stream, then half-closes the writer."""
    while chunk := await reader.read(CHUNK_BYTES):
        writer.write(chunk)
        await writer.drain()
    if writer.can_write_eof():
        with contextlib.suppress(OSError):
            writer.write_eof()
