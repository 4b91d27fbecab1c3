"""How the egress proxy reads HTTP/1.1: unreadable requests, bodies, one request a connection.

The servers and the trap are this folder's conftest's: hosts allowed by the test live
on 127.0.0.2, and nothing may reach the trap on refused 127.0.0.1.
"""

import asyncio
from collections.abc import AsyncIterator

import pytest

from farm_agent.egress.proxy_wire import MAX_HEAD_BYTES
from tests.helpers import assert_eventually
from tests.unit.agent.conftest import (
    ALLOWED,
    MakeSession,
    Resolver,
    Upstream,
    connect,
    exchange,
    get,
)


@pytest.fixture
async def keep_alive_host() -> AsyncIterator[Upstream]:
    """A host that would serve (and record) any further request sent on a connection."""
    async with Upstream(ALLOWED, keep_alive=True) as server:
        yield server


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NOT A REQUEST\r\n\r\n", b"400 Bad Request"),
        (b"GET http://a.test/\r\n\r\n", b"400 Bad Request"),
        (b"GET http://a.test/ HTTP/1.1\r\nno colon here\r\n\r\n", b"400 Bad Request"),
        # HTTP/1.1 requires a Host header; Chromium always sends one.
        (b"GET http://a.test/ HTTP/1.1\r\nAccept: */*\r\n\r\n", b"400 Bad Request"),
        (b"CONNECT a.test:443 HTTP/1.1\r\n\r\n", b"400 Bad Request"),
        (
            b"POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"501 Not Implemented",
        ),
    ],
)
async def test_a_request_that_is_not_http_1_1_is_answered_with_an_error_and_goes_nowhere(
    make_session: MakeSession, request_bytes: bytes, status: bytes
) -> None:
    # The resolver knows no names: a request that got as far as resolving would fail.
    resolver = Resolver({})
    session = await make_session(resolver)
    answer = await exchange(session, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status + b"\r\n")
    assert b"farm agent egress guard: not an HTTP proxy request" in answer
    assert resolver.calls == []
    assert session.blocked == [] and session.failures == {}


async def test_a_request_head_over_the_limit_is_answered_431(
    make_session: MakeSession, upstream: Upstream
) -> None:
    session = await make_session(Resolver({}))
    huge = b"x" * (2 * MAX_HEAD_BYTES)
    request = get(f"http://{ALLOWED}:{upstream.port}/", ALLOWED)
    answer = await exchange(session, request.replace(b"Accept:", b"X-Huge: " + huge + b"\r\nA:"))
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert upstream.connections == 0


@pytest.mark.parametrize(
    ("framing", "body", "sent_framing"),
    [
        (b"Content-Length: 5", b"hello", b"Content-Length: 5"),
        (b"Transfer-Encoding: chunked", b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n", b"chunked"),
        # Both: chunked wins, and the length does not go on beside it.
        (
            b"Content-Length: 3\r\nTransfer-Encoding: chunked",
            b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
            b"chunked",
        ),
    ],
)
async def test_a_plain_http_request_body_reaches_the_host_whole_and_framed_once(
    make_session: MakeSession, upstream: Upstream, framing: bytes, body: bytes, sent_framing: bytes
) -> None:
    session = await make_session(Resolver({}))
    head = f"POST http://{ALLOWED}:{upstream.port}/form HTTP/1.1\r\nHost: {ALLOWED}\r\n"
    answer = await exchange(session, head.encode() + framing + b"\r\n\r\n" + body)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"hello")
    assert upstream.bodies == [b"hello"]
    [sent] = upstream.heads
    assert sent_framing in sent
    if sent_framing == b"chunked":
        assert b"content-length" not in sent.lower()


async def test_a_broken_chunked_body_ends_the_exchange_and_no_whole_request_reaches_the_host(
    make_session: MakeSession, upstream: Upstream
) -> None:
    session = await make_session(Resolver({}))
    request = (
        f"POST http://{ALLOWED}:{upstream.port}/form HTTP/1.1\r\nHost: {ALLOWED}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n3\r\nhel\r\nnot a chunk size\r\n"
    )
    answer = await exchange(session, request.encode())
    assert answer == b""
    await assert_eventually(lambda: upstream.ended == 1, within=5)
    assert len(upstream.heads) == 1
    assert upstream.bodies == []


async def test_a_second_request_on_the_connection_goes_nowhere_and_is_checked_when_asked_anew(
    make_session: MakeSession, keep_alive_host: Upstream, trap: Upstream
) -> None:
    upstream = keep_alive_host
    session = await make_session(Resolver({}))
    first = get(f"http://{ALLOWED}:{upstream.port}/first", ALLOWED)
    second = get(f"http://127.0.0.1:{trap.port}/second", "127.0.0.1")
    answer = await exchange(session, first + second)
    # One answer, which closes the connection: the host served (and saw) only the first.
    assert answer.count(b"HTTP/1.1 ") == 1
    assert b"Connection: close" in answer and answer.endswith(b"hello")
    [sent] = upstream.heads
    assert sent.startswith(b"GET /first ")
    assert session.blocked == []
    # Asked again on a connection of its own, as a browser does, it is refused.
    again = await exchange(session, second)
    assert again.startswith(b"HTTP/1.1 403 Forbidden")
    assert [blocked.target for blocked in session.blocked] == [
        f"http://127.0.0.1:{trap.port}/second"
    ]


async def test_an_http_1_0_request_without_host_gets_one_on_its_way(
    make_session: MakeSession, upstream: Upstream
) -> None:
    session = await make_session(Resolver({}))
    request = f"GET http://{ALLOWED}:{upstream.port}/old HTTP/1.0\r\n\r\n".encode()
    answer = await exchange(session, request)
    assert answer.endswith(b"hello")
    [sent] = upstream.heads
    assert sent.startswith(b"GET /old HTTP/1.1\r\n")
    assert f"Host: {ALLOWED}:{upstream.port}\r\n".encode() in sent


async def test_bytes_sent_right_behind_a_connect_reach_the_host_after_the_answer(
    make_session: MakeSession, echo: Upstream
) -> None:
    session = await make_session(Resolver({}))
    early = b"\x16\x03\x01 client hello"
    established = b"HTTP/1.1 200 Connection Established\r\n\r\n"
    reader, writer = await asyncio.open_connection(session.host, session.port)
    try:
        writer.write(connect(f"{ALLOWED}:{echo.port}") + early)
        await writer.drain()
        answer = await asyncio.wait_for(reader.readexactly(len(established + early)), 5)
        assert answer == established + early
    finally:
        writer.close()
