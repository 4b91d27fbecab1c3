"""Fixtures for the egress guard's tests in real Chromium: a test site and listeners.

The test site is served on 127.0.0.2 and only 127.0.0.2/32 is allowed: the listeners
on 127.0.0.1 and [::1], and a farm service's port on 127.0.0.2, must never be
reached; every test here checks that.
"""

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from prometheus_client import REGISTRY

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.errors import TaskFailure
from farm_core.task_errors import ErrorCode
from tests.helpers import TcpListener
from tests.pages import Site, serve_site

SITE_HOST = "127.0.0.2"
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Listener(TcpListener):
    """Answers HTTP with "ok" and WebSockets with "pong"; records every connection and path."""

    paths: list[str] = field(default_factory=list)
    quiet_errors: tuple[type[Exception], ...] = (
        asyncio.IncompleteReadError,
        ConnectionError,
        KeyError,
    )

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        self.paths.append(head.split(" ")[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in head.split("\r\n")[1:])
        }
        if headers.get("upgrade", "").lower() == "websocket":
            await _websocket_pong(reader, writer, headers["sec-websocket-key"])
        else:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                b"Access-Control-Allow-Origin: *\r\nContent-Length: 2\r\n\r\nok"
            )
            await writer.drain()


async def _websocket_pong(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str
) -> None:
    """Accepts the handshake, reads one (masked, short) frame and answers "pong"."""
    accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
    writer.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
    )
    await writer.drain()
    header = await reader.readexactly(2)
    await reader.readexactly(4 + (header[1] & 0x7F))
    writer.write(b"\x81\x04pong")
    await writer.drain()
    await reader.read(1024)


@dataclass(frozen=True)
class Targets:
    """The refused loopback listeners, the allowed one on 127.0.0.2, and a farm service there."""

    ipv4: Listener
    ipv6: Listener
    allowed: Listener
    farm_service: Listener

    def refused(self) -> list[Listener]:
        return [self.ipv4, self.ipv6]


@pytest.fixture(scope="module")
async def targets() -> AsyncIterator[Targets]:
    listeners = Targets(
        Listener("127.0.0.1"), Listener("::1"), Listener(SITE_HOST), Listener(SITE_HOST)
    )
    async with (
        listeners.ipv4,
        listeners.ipv6,
        listeners.allowed,
        listeners.farm_service,
    ):
        yield listeners


@pytest.fixture(autouse=True)
def nothing_reaches_refused_addresses(targets: Targets) -> Iterator[None]:
    """After each test: no connection reached a refused listener or the farm service."""
    yield
    for listener in [*targets.refused(), targets.farm_service]:
        assert listener.connections == 0, f"{listener.origin} was reached: {listener.paths}"


@pytest.fixture(scope="module")
def guarded_site() -> Iterator[Site]:
    with serve_site(SITE_HOST) as site:
        yield site


def reach(site: Site, origin: str) -> tasks_pb2.TaskSpec:
    """Loads the page that reaches `origin` by img, iframe, fetch and WebSocket."""
    return tasks_pb2.TaskSpec(
        url=site.url(f"/reach?to={origin}"),
        timeout_ms=15_000,
        wait_until=tasks_pb2.WAIT_UNTIL_NETWORKIDLE,
        steps=[
            tasks_pb2.Step(wait_for="#fetch:not(:text('pending'))"),
            tasks_pb2.Step(wait_for="#ws:not(:text('pending'))"),
        ],
        extract=tasks_pb2.ExtractOptions(fields={"fetch": "#fetch", "ws": "#ws"}),
    )


def blocked_count(reason: str) -> float:
    value = REGISTRY.get_sample_value("farm_agent_blocked_requests_total", {"reason": reason})
    return value or 0.0


async def blocked_url_message(runner: BrowserSpecRunner, url: str) -> str:
    """Runs a task for `url`, which must fail with BLOCKED_URL, final; the failure's message."""
    spec = tasks_pb2.TaskSpec(url=url, timeout_ms=10_000, content=tasks_pb2.ContentOptions())
    with pytest.raises(TaskFailure) as caught:
        await runner.run(spec)
    assert caught.value.code is ErrorCode.BLOCKED_URL
    assert not caught.value.retryable
    return caught.value.message
