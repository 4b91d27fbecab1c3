"""The egress proxy on its own: resolution once (no rebinding), tunnels, plain http, refusals.

Real sockets on loopback only (the servers and the trap are this folder's conftest's).
"""

import asyncio
import ipaddress
import socket

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from farm_agent.egress.proxy import EgressProxy
from farm_agent.egress.proxy_wire import target_host_port, url_host_port
from farm_agent.egress.session import MAX_BLOCKED_KEPT, BlockedRequest, EgressSession
from farm_core.egress.address_policy import AddressPolicy, FarmService, Reason, Refusal
from farm_core.egress.allowlist import IpAddress
from farm_core.egress.resolution import farm_policy
from farm_core.tracing import tracer
from tests.unit.agent.conftest import (
    ALLOW,
    ALLOWED,
    LISTEN_HOST,
    MakeSession,
    Resolver,
    Upstream,
    connect,
    exchange,
    get,
)


async def test_a_host_is_resolved_once_and_the_vetted_address_is_the_one_connected(
    make_session: MakeSession, upstream: Upstream, trap: Upstream
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
    make_session: MakeSession, upstream: Upstream, trap: Upstream
) -> None:
    resolver = Resolver({"mixed.test": [[ALLOWED, "127.0.0.1"]]})
    session = await make_session(resolver)
    answer = await exchange(session, get(f"http://mixed.test:{upstream.port}/", "mixed.test"))
    assert answer.startswith(b"HTTP/1.1 403 Forbidden")
    assert upstream.connections == 0


async def test_plain_http_goes_in_origin_form_without_proxy_headers_and_closes(
    make_session: MakeSession, upstream: Upstream
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


async def test_connect_tunnels_bytes_to_an_allowed_host(
    make_session: MakeSession, echo: Upstream
) -> None:
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
    make_session: MakeSession, trap: Upstream, target: str
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
    make_session: MakeSession, upstream: Upstream
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
    make_session: MakeSession, upstream: Upstream
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


async def test_other_schemes_in_absolute_form_are_refused(make_session: MakeSession) -> None:
    session = await make_session(Resolver({}))
    answer = await exchange(
        session, b"GET ftp://files.test/a?key=secret HTTP/1.1\r\nHost: files.test\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 403 Forbidden")
    [blocked] = session.blocked
    assert blocked.refusal.reason is Reason.SCHEME
    assert blocked.target == "ftp://files.test/a"


async def test_an_unreachable_host_is_noted_and_the_connection_closed(
    make_session: MakeSession,
) -> None:
    closed = await asyncio.start_server(lambda r, w: None, ALLOWED, 0)
    port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    session = await make_session(Resolver({}))
    answer = await exchange(session, get(f"http://{ALLOWED}:{port}/", ALLOWED))
    assert answer == b""
    assert "cannot connect to" in session.failures[f"{ALLOWED}:{port}"]
    assert session.blocked == []


async def failing_resolver(host: str, port: int) -> list[IpAddress]:
    """NXDOMAIN for gone.test, a resolver failure (SERVFAIL, timeout) for any other name."""
    if host == "gone.test":
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


async def test_a_name_that_does_not_exist_is_noted_as_such_and_a_resolver_failure_is_not(
    make_session: MakeSession,
) -> None:
    session = await make_session(failing_resolver)
    for host in ("gone.test", "flaky.test"):
        assert await exchange(session, get(f"http://{host}/", host)) == b""
        assert f"{host} does not resolve" in session.failures[f"{host}:80"]
    assert session.nonexistent == {"gone.test:80"}


async def test_a_refusal_is_kept_once_per_target(make_session: MakeSession, trap: Upstream) -> None:
    session = await make_session(Resolver({}))
    for _ in range(3):
        await exchange(session, connect(f"127.0.0.1:{trap.port}"))
    assert len(session.blocked) == 1


async def test_the_proxy_refuses_to_connect_to_itself(make_session: MakeSession) -> None:
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
    make_session: MakeSession, upstream: Upstream
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


async def test_a_connection_ended_before_its_task_ran_is_closed_all_the_same() -> None:
    proxy = EgressProxy(AddressPolicy(ALLOW), Resolver({}), listen_host=LISTEN_HOST)
    session = await proxy.open_session("task")
    try:
        _, writer = await asyncio.open_connection(session.host, session.port)
        # As on_connection registers it; the task is cancelled before it ever runs.
        never_ran = asyncio.create_task(asyncio.sleep(60))
        session._connections[never_ran] = writer
        await proxy.close_session(session)
        assert never_ran.cancelled()
        assert writer.is_closing()
        await writer.wait_closed()
    finally:
        await proxy.close_session(session)


async def test_closing_the_proxy_stops_every_listener_and_a_stale_close_touches_no_other() -> None:
    proxy = EgressProxy(AddressPolicy(ALLOW), Resolver({}), listen_host=LISTEN_HOST)
    await proxy.start()
    kept = await proxy.open_session("warm context")
    stale = EgressSession(label="closed long ago", port=kept.port)
    await proxy.close_session(stale)  # its port now serves another session
    _, writer = await asyncio.open_connection(kept.host, kept.port)
    writer.close()
    await writer.wait_closed()

    await proxy.close()
    for session in (proxy.default_session, kept):
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(session.host, session.port)


def test_a_decision_after_the_served_work_ended_is_not_noted_on_its_span(
    recorded_spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    # A session's page makes requests between commands, when no command's span lasts.
    session = EgressSession(label="session", span=tracer().start_span("session.command"))
    session.note("egress.allowed", {"farm.egress.target": "example.com:443"})
    session.span.end()
    session.note("egress.allowed", {"farm.egress.target": "example.org:443"})
    (command,) = recorded_spans.get_finished_spans()
    assert [event.attributes for event in command.events] == [
        {"farm.egress.target": "example.com:443"}
    ]
    assert not [record for record in caplog.records if "ended span" in record.getMessage()]
