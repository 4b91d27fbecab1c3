"""The egress proxy on its own: resolution once (no rebinding), tunnels, plain http, refusals.

Real sockets on loopback only: hosts allowed by the test live on 127.0.0.2, and a
trap on 127.0.0.1 (refused) records anything that reaches it.
"""

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import h11
import pytest

from farm_agent.egress.address_policy import AddressPolicy, FarmService, Reason, Refusal
from farm_agent.egress.allowlist import AllowList, IpAddress
from farm_agent.egress.proxy import (
    MAX_BLOCKED_KEPT,
    BlockedRequest,
    EgressProxy,
    EgressSession,
    farm_policy,
)
from farm_agent.egress.proxy_wire import target_host_port, url_host_port

ALLOWED = "127.0.0.2"
# The proxy listens apart from 127.0.0.1, as agents do; the allow-list opens its address.
LISTEN_HOST = "127.0.0.9"
ALLOW = AllowList.parse(f"{ALLOWED}/32,{LISTEN_HOST}/32")


@dataclass
class Upstream:
    """A server that records what reached it: answers HTTP, a WebSocket upgrade, or echoes.

    It answers one request a connection, or with `keep_alive` every request sent on it.
    """

    host: str
    echo: bool = False
    keep_alive: bool = False
    port: int = 0
    heads: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0
    # Connections it has finished with, so a test can wait until what reached it is recorded.
    ended: int = 0
    server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
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
        except (asyncio.IncompleteReadError, ConnectionError, h11.RemoteProtocolError):
            pass
        finally:
            writer.close()
            self.ended += 1


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
    server = Upstream(ALLOWED)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def echo() -> AsyncIterator[Upstream]:
    server = Upstream(ALLOWED, echo=True)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def trap() -> AsyncIterator[Upstream]:
    """A server on refused 127.0.0.1: nothing may reach it."""
    server = Upstream("127.0.0.1")
    await server.start()
    yield server
    await server.stop()
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


@pytest.fixture
async def make_session() -> AsyncIterator[Callable[..., Awaitable[EgressSession]]]:
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


async def test_a_host_is_resolved_once_and_the_vetted_address_is_the_one_connected(
    make_session, upstream: Upstream, trap: Upstream
) -> None:
    # Public (here: allowed) first, then loopback: the classic DNS rebinding.
    resolver = Resolver({"rebind.test": [[ALLOWED], ["127.0.0.1"]]})
    session = await make_session(resolver)
    first = await exchange(session, get(f"http://rebind.test:{upstream.port}/", "rebind.test"))
    assert first.startswith(b"HTTP/1.1 200 OK")
    assert resolver.calls == ["rebind.test"]
    assert len(upstream.heads) == 1
    second = await exchange(session, get(f"http://rebind.test:{trap.port}/", "rebind.test"))
    assert second.startswith(b"HTTP/1.1 403 Forbidden")
    assert b"rebind.test resolves to 127.0.0.1, a loopback address" in second
    assert resolver.calls == ["rebind.test", "rebind.test"]
    [blocked] = session.blocked
    assert blocked.target == f"http://rebind.test:{trap.port}/"
    assert (blocked.refusal.address, blocked.refusal.reason) == ("127.0.0.1", Reason.LOOPBACK)


async def test_a_host_with_one_refused_address_among_allowed_ones_is_refused(
    make_session, upstream: Upstream, trap: Upstream
) -> None:
    resolver = Resolver({"mixed.test": [[ALLOWED, "127.0.0.1"]]})
    session = await make_session(resolver)
    answer = await exchange(session, get(f"http://mixed.test:{upstream.port}/", "mixed.test"))
    assert answer.startswith(b"HTTP/1.1 403 Forbidden")
    assert upstream.connections == 0


async def test_plain_http_goes_in_origin_form_without_proxy_headers_and_closes(
    make_session, upstream: Upstream
) -> None:
    session = await make_session(Resolver({}))
    url = f"http://{ALLOWED}:{upstream.port}/path?q=1"
    answer = await exchange(session, get(url, f"{ALLOWED}:{upstream.port}"))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert body == b"hello"
    assert b"Connection: close" in head
    assert b"keep-alive" not in head.lower()
    [sent] = upstream.heads
    assert sent.startswith(b"GET /path?q=1 HTTP/1.1\r\n")
    assert b"proxy-" not in sent.lower()
    assert b"Connection: close" in sent
    assert session.blocked == []


async def test_connect_tunnels_bytes_to_an_allowed_host(make_session, echo: Upstream) -> None:
    session = await make_session(Resolver({"tunnel.test": [[ALLOWED]]}))
    answer = await exchange(
        session,
        f"CONNECT tunnel.test:{echo.port} HTTP/1.1\r\nHost: tunnel.test\r\n\r\n".encode(),
        then=b"\x16\x03\x01 not inspected",
    )
    assert answer == b"HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x01 not inspected"


@pytest.mark.parametrize(
    "target", ["127.0.0.1:{port}", "localhost:{port}", "[::ffff:127.0.0.1]:{port}"]
)
async def test_connect_to_a_refused_address_is_answered_403(
    make_session, trap: Upstream, target: str
) -> None:
    session = await make_session(Resolver({"localhost": [["127.0.0.1"]]}))
    authority = target.format(port=trap.port)
    answer = await exchange(session, connect(authority))
    assert answer.startswith(b"HTTP/1.1 403 Forbidden")
    [blocked] = session.blocked
    assert blocked.target == authority
    assert blocked.refusal.reason is Reason.LOOPBACK
    assert session.refusal_for(authority.rsplit(":", 1)[0].strip("[]"), trap.port) == blocked


async def test_a_websocket_upgrade_over_plain_http_is_relayed_both_ways(
    make_session, upstream: Upstream
) -> None:
    session = await make_session(Resolver({}))
    request = (
        f"GET http://{ALLOWED}:{upstream.port}/ws HTTP/1.1\r\nHost: x\r\n"
        "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    ).encode()
    answer = await exchange(session, request, then=b"ping")
    assert answer == b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nPING"
    assert b"Connection: Upgrade" in upstream.heads[0]


async def test_a_farm_service_is_refused_even_in_an_allowed_network(
    make_session, upstream: Upstream
) -> None:
    service = FarmService(ALLOWED, upstream.port)
    policy = AddressPolicy(
        ALLOW, frozenset([service]), frozenset([(ipaddress.ip_address(ALLOWED), upstream.port)])
    )
    session = await make_session(Resolver({}), policy)
    answer = await exchange(session, get(f"http://{ALLOWED}:{upstream.port}/", ALLOWED))
    assert answer.startswith(b"HTTP/1.1 403 Forbidden")
    assert session.blocked[0].refusal.reason is Reason.FARM_SERVICE
    assert upstream.connections == 0


async def test_other_schemes_in_absolute_form_are_refused(make_session) -> None:
    session = await make_session(Resolver({}))
    answer = await exchange(
        session, b"GET ftp://files.test/a?key=secret HTTP/1.1\r\nHost: files.test\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 403 Forbidden")
    [blocked] = session.blocked
    assert blocked.refusal.reason is Reason.SCHEME
    assert blocked.target == "ftp://files.test/a"


async def test_an_unreachable_host_is_noted_and_the_connection_closed(make_session) -> None:
    closed = await asyncio.start_server(lambda r, w: None, ALLOWED, 0)
    port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    session = await make_session(Resolver({}))
    answer = await exchange(session, get(f"http://{ALLOWED}:{port}/", ALLOWED))
    assert answer == b""
    assert "cannot connect to" in session.failures[f"{ALLOWED}:{port}"]
    assert session.blocked == []


async def test_a_refusal_is_kept_once_per_target(make_session, trap: Upstream) -> None:
    session = await make_session(Resolver({}))
    for _ in range(3):
        await exchange(session, connect(f"127.0.0.1:{trap.port}"))
    assert len(session.blocked) == 1


async def test_the_proxy_refuses_to_connect_to_itself(make_session) -> None:
    session = await make_session(Resolver({}))
    assert session.host == LISTEN_HOST
    answer = await exchange(session, connect(f"{LISTEN_HOST}:{session.port}"))
    assert answer.startswith(b"HTTP/1.1 403 Forbidden")
    assert session.blocked[0].refusal.reason is Reason.FARM_SERVICE


async def test_an_unbindable_listen_address_falls_back_to_127_0_0_1() -> None:
    # 192.0.2.1 (documentation range) is on no interface here: binding it fails.
    proxy = EgressProxy(AddressPolicy(ALLOW), Resolver({}), listen_host="192.0.2.1")
    await proxy.start()
    try:
        assert proxy.default_session.host == "127.0.0.1"
        assert f"--proxy-server=http://127.0.0.1:{proxy.default_session.port}" in (
            proxy.launch_arguments()
        )
    finally:
        await proxy.close()


async def test_after_an_interim_answer_the_final_one_still_says_connection_close(
    make_session, upstream: Upstream
) -> None:
    session = await make_session(Resolver({}))
    request = (
        f"POST http://{ALLOWED}:{upstream.port}/ HTTP/1.1\r\nHost: x\r\n"
        "Expect: 100-continue\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    answer = await exchange(session, request)
    interim, final = answer.split(b"\r\n\r\n", 1)
    assert interim == b"HTTP/1.1 100 Continue"
    assert final.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close" in final
    assert b"keep-alive" not in final.lower()


async def test_farm_services_are_refused_by_the_addresses_their_names_resolve_to() -> None:
    storage = FarmService("storage.test", 7102)
    policy = await farm_policy(ALLOW, [storage], Resolver({"storage.test": [[ALLOWED]]}))
    by_address = policy.check(ALLOWED, 7102, [ipaddress.ip_address(ALLOWED)])
    assert by_address is not None and by_address.reason is Reason.FARM_SERVICE
    assert policy.check(ALLOWED, 7103, [ipaddress.ip_address(ALLOWED)]) is None


@pytest.mark.parametrize(
    ("url", "host_and_port", "target"),
    [
        ("http://a.test/x?y=1", ("a.test", 80), "a.test:80"),
        ("https://a.test/", ("a.test", 443), "a.test:443"),
        ("wss://a.test/", ("a.test", 443), "a.test:443"),
        ("ws://a.test:8080/", ("a.test", 8080), "a.test:8080"),
        ("http://[::1]:9/", ("::1", 9), "[::1]:9"),
        ("http://a.test:99999/", ("", 0), "http://a.test:99999/"),
    ],
)
def test_a_urls_host_and_port_use_the_schemes_default(
    url: str, host_and_port: tuple[str, int], target: str
) -> None:
    assert url_host_port(url) == host_and_port
    assert target_host_port(url) == target


async def test_each_task_session_is_told_only_its_own_refusals_and_ends_with_its_block(
    trap: Upstream,
) -> None:
    proxy = EgressProxy(AddressPolicy(ALLOW), Resolver({}), listen_host=LISTEN_HOST)
    await proxy.start()
    try:
        async with proxy.session("task a") as first, proxy.session("task b") as second:
            assert len({proxy.default_session.port, first.port, second.port}) == 3
            refused = connect(f"127.0.0.1:{trap.port}")
            assert (await exchange(first, refused)).startswith(b"HTTP/1.1 403 Forbidden")
            assert [blocked.target for blocked in first.blocked] == [f"127.0.0.1:{trap.port}"]
            assert second.blocked == [] and proxy.default_session.blocked == []
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(first.host, first.port)
    finally:
        await proxy.close()


def test_a_session_keeps_at_most_max_blocked_kept_refusals_yet_tells_each_new_one() -> None:
    session = EgressSession(label="task")
    refusal = Refusal("a.test", "127.0.0.1", Reason.LOOPBACK)
    news = [session.record(BlockedRequest(f"a.test:{port}", refusal)) for port in range(150)]
    assert all(news)
    assert len(session.blocked) == MAX_BLOCKED_KEPT
    assert not session.record(BlockedRequest("a.test:0", refusal))
