"""Fixtures for the egress proxy's tests: upstream servers, a scripted resolver, sessions.

Real sockets on loopback only: hosts allowed by the tests live on 127.0.0.2, and a
trap on 127.0.0.1 (refused) records anything that reaches it.
"""

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import h11
import pytest

from farm_agent.egress.proxy import EgressProxy
from farm_agent.egress.session import EgressSession
from farm_core.egress.address_policy import AddressPolicy
from farm_core.egress.allowlist import AllowList, IpAddress
from tests.helpers import TcpListener

ALLOWED = "127.0.0.2"
# The proxy listens apart from 127.0.0.1, as agents do; the allow-list opens its address.
LISTEN_HOST = "127.0.0.9"
ALLOW = AllowList.parse(f"{ALLOWED}/32,{LISTEN_HOST}/32")


@dataclass
class Upstream(TcpListener):
    """A server that records what reached it: answers HTTP, a WebSocket upgrade, or echoes.

    It answers one request a connection, or with `keep_alive` every request sent on it.
    """

    echo: bool = False
    keep_alive: bool = False
    heads: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    quiet_errors: tuple[type[Exception], ...] = (
        asyncio.IncompleteReadError,
        ConnectionError,
        h11.RemoteProtocolError,
    )

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.echo:
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
            return
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            if b"upgrade: websocket" in head.lower():
                writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
                while data := await reader.read(1024):
                    writer.write(data.upper())
                    await writer.drain()
                return
            if b"expect: 100" in head.lower():
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.bodies.append(await read_body(head, reader))
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n"
                b"Keep-Alive: timeout=5\r\n\r\nhello"
            )
            await writer.drain()
            if not self.keep_alive:
                return


async def read_body(head: bytes, reader: asyncio.StreamReader) -> bytes:
    """The body of the request with `head`, as a server that follows HTTP/1.1 reads it."""
    server = h11.Connection(h11.SERVER)
    server.receive_data(head)
    body = b""
    while not isinstance(event := server.next_event(), h11.EndOfMessage):
        if event is h11.NEED_DATA:
            server.receive_data(await reader.read(1024))
        elif isinstance(event, h11.Data):
            body += event.data
    return body


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with Upstream(ALLOWED) as server:
        yield server


@pytest.fixture
async def echo() -> AsyncIterator[Upstream]:
    async with Upstream(ALLOWED, echo=True) as server:
        yield server


@pytest.fixture
async def trap() -> AsyncIterator[Upstream]:
    """A server on refused 127.0.0.1: nothing may reach it."""
    async with Upstream("127.0.0.1") as server:
        yield server
    assert server.connections == 0, "a refused address was reached"


class Resolver:
    """A resolver that answers from a script of replies per host and counts its calls."""

    def __init__(self, replies: dict[str, list[list[str]]]) -> None:
        self.replies = replies
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IpAddress]:
        self.calls.append(host)
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        script = self.replies[host]
        answer = script.pop(0) if len(script) > 1 else script[0]
        return [ipaddress.ip_address(address) for address in answer]


MakeSession = Callable[..., Awaitable[EgressSession]]


@pytest.fixture
async def make_session() -> AsyncIterator[MakeSession]:
    """Starts proxies with a resolver and a policy and opens a task session on each."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(resolver: Resolver, policy: AddressPolicy | None = None) -> EgressSession:
            proxy = EgressProxy(
                policy or AddressPolicy(ALLOW),
                resolver,
                connect_timeout_seconds=5,
                listen_host=LISTEN_HOST,
            )
            await proxy.start()
            stack.push_async_callback(proxy.close)
            return await stack.enter_async_context(proxy.session("task test"))

        yield make


async def exchange(session: EgressSession, request: bytes, then: bytes = b"") -> bytes:
    """Sends `request` (and `then` after the first answer) to the proxy; all it answered."""
    reader, writer = await asyncio.open_connection(session.host, session.port)
    try:
        writer.write(request)
        await writer.drain()
        if not then:
            return await asyncio.wait_for(reader.read(), 5)
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.write(then)
        await writer.drain()
        return first + await asyncio.wait_for(reader.read(len(then)), 5)
    finally:
        writer.close()


def get(url: str, host: str) -> bytes:
    return (
        f"GET {url} HTTP/1.1\r\nHost: {host}\r\nProxy-Connection: keep-alive\r\n"
        "Proxy-Authorization: Basic eDp5\r\nAccept: */*\r\n\r\n"
    ).encode()


def connect(authority: str) -> bytes:
    """A CONNECT request as Chromium sends it, Host included (HTTP/1.1 requires one)."""
    return f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode()
