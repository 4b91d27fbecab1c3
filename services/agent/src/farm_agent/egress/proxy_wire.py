"""HTTP/1.1 of the egress guard, parsed and framed by h11: requests, short answers, relays."""

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Self
from urllib.parse import SplitResult, urlsplit

import h11

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
# A request or response head still unfinished after this many bytes is refused (h11's limit).
MAX_HEAD_BYTES = 64 * 1024
# Headers that concern only the hop from Chromium to the proxy.
_HOP_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization", b"te", b"trailer"}
)


@dataclass
class HttpConnection:
    """One socket of the proxy and h11's state of the HTTP spoken on it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    http: h11.Connection

    @classmethod
    def from_browser(cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Self:
        """Chromium's connection to the proxy, which sends requests."""
        return cls(reader, writer, h11.Connection(h11.SERVER, MAX_HEAD_BYTES))

    @classmethod
    def to_host(cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Self:
        """The proxy's connection to a host, which answers requests."""
        return cls(reader, writer, h11.Connection(h11.CLIENT, MAX_HEAD_BYTES))

    async def next_event(self) -> h11.Event:
        """The next event from the peer, read from the socket as h11 needs it."""
        while (event := self.http.next_event()) is h11.NEED_DATA:
            self.http.receive_data(await self.reader.read(CHUNK_BYTES))
        # The proxy stops asking at the end of a message or at a switch, before any pause.
        assert isinstance(event, h11.Event), event
        return event

    async def send(self, *events: h11.Event) -> None:
        """Writes `events` to the peer."""
        for event in events:
            self.writer.write(self.http.send(event) or b"")
        await self.writer.drain()

    async def answer(self, status: int, text: str) -> None:
        """A short plain-text answer from the proxy itself; the connection closes after it."""
        body = f"farm agent egress guard: {text}\n".encode()
        head = h11.Response(
            status_code=status,
            reason=HTTPStatus(status).phrase,
            headers=[
                (b"Content-Type", b"text/plain; charset=utf-8"),
                (b"Content-Length", str(len(body)).encode()),
                (b"Connection", b"close"),
            ],
        )
        with contextlib.suppress(ConnectionError, OSError):
            await self.send(head, h11.Data(data=body), h11.EndOfMessage())

    async def close(self) -> None:
        """Closes the socket."""
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


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


async def exchange(
    browser: HttpConnection, request: h11.Request, url: SplitResult, host: HttpConnection
) -> None:
    """Sends a plain http request on to the host and its answer back; an upgrade then relays."""
    await host.send(_origin_request(request, url))
    upload = asyncio.create_task(_pass_body(browser, host))
    try:
        switched = await _pass_response(host, browser)
        if switched:
            await upload
    finally:
        upload.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upload
    if switched:
        await relay(browser, host)


def _origin_request(request: h11.Request, url: SplitResult) -> h11.Request:
    """The request as sent to the host: origin-form target, no hop headers, one request."""
    listed = {
        token.strip().lower()
        for name, value in request.headers
        if name == b"connection"
        for token in value.split(b",")
    }
    names = {name for name, _ in request.headers}
    upgrade = b"upgrade" in listed and b"upgrade" in names
    dropped = _HOP_HEADERS | (listed - {b"upgrade"}) | (set() if upgrade else {b"upgrade"})
    if b"transfer-encoding" in names:
        # The body goes on chunked; a length beside it would let the host read it otherwise.
        dropped |= {b"content-length"}
    headers = [
        (name, value) for name, value in request.headers.raw_items() if name.lower() not in dropped
    ]
    if b"host" not in names:
        headers.insert(0, (b"Host", url.netloc.rpartition("@")[2].encode()))
    headers.append((b"Connection", b"Upgrade" if upgrade else b"close"))
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    return h11.Request(method=request.method, target=target, headers=headers)


async def _pass_body(browser: HttpConnection, host: HttpConnection) -> None:
    """Passes the request's body on, framed anew; a broken one closes the host's connection."""
    try:
        while not isinstance(event := await browser.next_event(), h11.EndOfMessage):
            await host.send(event)
        await host.send(event)
    except (h11.ProtocolError, ConnectionError, OSError) as error:
        log.debug("egress request body ended: %s", error)
        host.writer.close()


async def _pass_response(host: HttpConnection, browser: HttpConnection) -> bool:
    """Passes the host's answer on with `Connection: close`; True if it switched protocols.

    Interim answers (100 Continue) pass as they are, up to the final one; a 101
    switches the connection to the WebSocket.
    """
    while True:
        event = await host.next_event()
        if isinstance(event, h11.Response):
            event = _closing(event)
        await browser.send(event)
        if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
            return True
        if isinstance(event, h11.EndOfMessage):
            return False


def _closing(response: h11.Response) -> h11.Response:
    """The response with `Connection: close`, so Chromium sends its next request anew."""
    headers = [
        (name, value)
        for name, value in response.headers.raw_items()
        if name.lower() not in (b"connection", b"keep-alive")
    ]
    return h11.Response(
        status_code=response.status_code,
        reason=response.reason,
        headers=[*headers, (b"Connection", b"close")],
    )


async def relay(browser: HttpConnection, host: HttpConnection) -> None:
    """Copies bytes both ways, those h11 read ahead first, until the host's side ends."""
    host.writer.write(browser.http.trailing_data[0])
    browser.writer.write(host.http.trailing_data[0])
    upload = asyncio.create_task(pipe(browser.reader, host.writer))
    try:
        await pipe(host.reader, browser.writer)
    finally:
        upload.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await upload


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies until end of stream, then half-closes the writer."""
    while chunk := await reader.read(CHUNK_BYTES):
        writer.write(chunk)
        await writer.drain()
    if writer.can_write_eof():
        with contextlib.suppress(OSError):
            writer.write_eof()
