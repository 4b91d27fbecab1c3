"""The agent's egress guard: an HTTP forward proxy on loopback for every browser request.

Chromium sends each request to it (CONNECT for https and wss, absolute URIs for plain
http and ws). The proxy resolves the host once, asks the AddressPolicy about every
address, and connects to an address it allowed, so a host that resolves to a public
address now and a private one later (DNS rebinding) cannot pass. Each task gets its
own listener (an EgressSession), so the requests it refused are told to that task.
"""

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator, Sequence
from urllib.parse import urlsplit

import h11
from opentelemetry import trace

from farm_agent import metrics
from farm_agent.egress.guarded_ports import GuardedPorts
from farm_agent.egress.proxy_wire import (
    CHUNK_BYTES,
    HttpConnection,
    exchange,
    host_port,
    relay,
    split_authority,
    url_host_port,
)
from farm_agent.egress.session import FALLBACK_LISTEN_HOST, BlockedRequest, EgressSession
from farm_core.egress.address_policy import AddressPolicy, Reason, Refusal, embedded_ipv4
from farm_core.egress.allowlist import IpAddress
from farm_core.egress.resolution import Resolver, name_does_not_exist, system_resolver

log = logging.getLogger(__name__)


class EgressProxy:
    """Listens on a loopback address, one port for the browsers' launch and one per task.

    The address is apart from 127.0.0.1 by default, so that the ports it takes never
    collide with ports a launcher picked on 127.0.0.1 for the farm's services; where
    it cannot be bound, 127.0.0.1 is used.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        resolver: Resolver = system_resolver,
        connect_timeout_seconds: float = 10.0,
        listen_host: str = FALLBACK_LISTEN_HOST,
        guarded_ports: GuardedPorts | None = None,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._connect_timeout = connect_timeout_seconds
        self._listen_host = listen_host
        # Every open listener by port, with the session it serves.
        self._servers: dict[int, tuple[asyncio.Server, EgressSession]] = {}
        # Loopback ports that come and go (sessions' DevTools ports), of every agent on
        # this host when they share a folder.
        self._guarded_ports = guarded_ports or GuardedPorts()
        self.default_session = EgressSession(label="browser")

    @property
    def policy(self) -> AddressPolicy:
        """The policy every request is checked against."""
        return self._policy

    @property
    def guarded_ports(self) -> frozenset[int]:
        """The loopback ports this agent guards now besides the farm's own."""
        return self._guarded_ports.own

    def guard_port(self, port: int) -> None:
        """Refuses pages the agent's loopback `port` from now on (a session's DevTools port)."""
        self._guarded_ports.guard(port)

    def release_port(self, port: int) -> None:
        """Stops guarding `port` (its listener has closed)."""
        self._guarded_ports.release(port)

    def launch_arguments(self, session: EgressSession | None = None) -> list[str]:
        """Chromium flags that send every request, loopback too, through `session`'s listener.

        Without a session: the default listener, used by contexts given no proxy of their own.
        """
        listener = session or self.default_session
        return [
            f"--proxy-server=http://{self._listen_host}:{listener.port}",
            # Chromium skips the proxy for loopback unless told: "<-loopback>" removes that.
            "--proxy-bypass-list=<-loopback>",
            # WebRTC may send UDP only through the proxy, which has none: no direct UDP.
            "--webrtc-ip-handling-policy=disable_non_proxied_udp",
            # The headless shell ignores the switch above (a preference of Chrome's browser
            # layer) and reads only this one.
            "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
            # QUIC is UDP, which an HTTP proxy does not carry.
            "--disable-quic",
        ]

    async def start(self) -> None:
        """Opens the default listener, used by contexts that were given no session."""
        await self._listen(self.default_session)

    @contextlib.asynccontextmanager
    async def session(self, label: str) -> AsyncIterator[EgressSession]:
        """A listener of its own for one task; its connections end with the block."""
        session = await self.open_session(label)
        try:
            yield session
        finally:
            await self.close_session(session)

    async def open_session(self, label: str) -> EgressSession:
        """A listener kept across tasks (a warm context's); stop it with `close_session`."""
        session = EgressSession(label=label, span=trace.get_current_span())
        await self._listen(session)
        return session

    async def hand_over(self, session: EgressSession, label: str) -> None:
        """Gives a kept listener to the next task: its connections end, its records are cleared."""
        await _end_connections(session)
        session.label = label
        session.blocked.clear()
        session.failures.clear()
        session.nonexistent.clear()
        session.span = trace.get_current_span()

    async def close(self) -> None:
        """Stops every listener: the default one and any session's still open."""
        await self.close_session(self.default_session)
        for _, session in list(self._servers.values()):
            await self.close_session(session)

    async def _listen(self, session: EgressSession) -> None:
        def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.create_task(self._serve(session, reader, writer))
            session._connections[task] = writer
            task.add_done_callback(lambda done: session._connections.pop(done, None))

        try:
            server = await asyncio.start_server(
                on_connection, self._listen_host, 0, reuse_address=True
            )
        except OSError as error:
            if self._listen_host == FALLBACK_LISTEN_HOST:
                raise
            log.warning(
                "the egress guard cannot listen on %s (%s); it listens on %s instead",
                self._listen_host,
                error,
                FALLBACK_LISTEN_HOST,
            )
            self._listen_host = FALLBACK_LISTEN_HOST
            await self._listen(session)
            return
        session.host = self._listen_host
        session.port = server.sockets[0].getsockname()[1]
        self._servers[session.port] = (server, session)

    async def close_session(self, session: EgressSession) -> None:
        """Stops a listener (one from `open_session`, say) and ends its connections."""
        listener = self._servers.get(session.port)
        if listener is not None and listener[1] is session:
            # Only its own: a port closed before may serve another session by now.
            del self._servers[session.port]
            listener[0].close()
        else:
            listener = None
        await _end_connections(session)
        if listener is not None:
            await listener[0].wait_closed()

    async def _serve(
        self, session: EgressSession, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        browser = HttpConnection.from_browser(reader, writer)
        try:
            try:
                request = await asyncio.wait_for(browser.next_event(), self._connect_timeout)
            except h11.RemoteProtocolError as error:
                status = error.error_status_hint
                await browser.answer(status, f"not an HTTP proxy request ({error})")
                return
            if not isinstance(request, h11.Request):  # closed without asking
                return
            target = request.target.decode("ascii")
            if request.method == b"CONNECT":
                await self._tunnel(session, target, browser)
            else:
                await self._forward(session, request, target, browser)
        except TimeoutError:
            pass
        except (h11.ProtocolError, ConnectionError, OSError) as error:
            log.debug("egress connection ended: %s", error)
        finally:
            await browser.close()

    async def _tunnel(self, session: EgressSession, target: str, browser: HttpConnection) -> None:
        """CONNECT host:port: bytes both ways once the host passed, no TLS interception."""
        try:
            host, port = split_authority(target, default_port=443)
        except ValueError:
            await browser.answer(400, f"bad CONNECT target {target!r}")
            return
        upstream = await self._open(session, target, host, port, browser)
        if upstream is None:
            return
        try:
            await browser.send(
                h11.Response(status_code=200, reason="Connection Established", headers=[])
            )
            await relay(browser, upstream)
        finally:
            await upstream.close()

    async def _forward(
        self, session: EgressSession, request: h11.Request, target: str, browser: HttpConnection
    ) -> None:
        """A plain http (or ws) request in absolute form: sent on to the host, one a connection."""
        url = urlsplit(target)
        host = url.hostname or ""
        if not host or url.scheme in ("https", "wss"):
            await browser.answer(400, f"{target!r}: send encrypted requests by CONNECT")
            return
        # The query stays out of the task's result and the logs; it may hold secrets.
        shown_target = target.split("?", 1)[0][:300]
        refusal = self._policy.check_scheme(host, url.scheme)
        if refusal is not None:
            self._refuse(session, shown_target, refusal)
            await browser.answer(403, refusal.describe())
            return
        try:
            port = url.port or 80
        except ValueError:
            await browser.answer(400, f"bad port in {target!r}")
            return
        upstream = await self._open(
            session, shown_target, host, port, browser, answer_failures=False
        )
        if upstream is None:
            return
        try:
            await exchange(browser, request, url, upstream)
        finally:
            await upstream.close()

    async def _open(
        self,
        session: EgressSession,
        target: str,
        host: str,
        port: int,
        browser: HttpConnection,
        *,
        answer_failures: bool = True,
    ) -> HttpConnection | None:
        """A connection to a vetted address of `host`; None once refused or failed (answered)."""
        name = host.strip("[]")
        try:
            addresses = await asyncio.wait_for(self._resolver(name, port), self._connect_timeout)
        except (OSError, TimeoutError, UnicodeError) as error:
            if name_does_not_exist(error):
                session.nonexistent.add(host_port(name, port))
            reason = f"{name} does not resolve ({error or type(error).__name__})"
            await self._failed(session, host, port, reason, browser, answer_failures)
            return None
        refusal = self._policy.check(name, port, addresses) or self._itself(name, port, addresses)
        if refusal is None and not addresses:
            await self._failed(
                session, host, port, f"{name} has no address", browser, answer_failures
            )
            return None
        if refusal is not None:
            self._refuse(session, target, refusal)
            await browser.answer(403, refusal.describe())
            return None
        session.note(
            "egress.allowed", {"farm.egress.target": host_port(name, port), **_tried(addresses)}
        )
        problems = []
        for address in addresses:
            try:
                streams = await asyncio.wait_for(
                    asyncio.open_connection(str(address), port, limit=CHUNK_BYTES),
                    self._connect_timeout,
                )
                return HttpConnection.to_host(*streams)
            except (OSError, TimeoutError) as error:
                problems.append(f"{address}: {error or type(error).__name__}")
        reason = f"cannot connect to {host_port(name, port)} ({'; '.join(problems)})"
        await self._failed(session, host, port, reason, browser, answer_failures)
        return None

    def _itself(self, host: str, port: int, addresses: Sequence[IpAddress]) -> Refusal | None:
        """Refuses a request to one of the agent's own listeners.

        The proxy's (a loop, or a way around it) and the sessions' DevTools ports (a way
        into another session's browser), this agent's and those other agents on this
        host guard in the shared folder.
        """
        if port in self._servers:
            own = ipaddress.ip_address(self._listen_host)
            if any(address == own or embedded_ipv4(address) == [own] for address in addresses):
                return Refusal(host, host_port(self._listen_host, port), Reason.FARM_SERVICE)
        if any(_loopback(address) for address in addresses) and port in self._guarded_ports:
            return Refusal(host, host_port(host, port), Reason.FARM_SERVICE)
        return None

    async def _failed(
        self,
        session: EgressSession,
        host: str,
        port: int,
        reason: str,
        browser: HttpConnection,
        tell: bool,
    ) -> None:
        """Notes why a connection failed; a tunnel is answered 502, plain http just closed."""
        target = host_port(host.strip("[]"), port)
        session.failures[target] = reason
        session.note("egress.failed", {"farm.egress.target": target, "farm.egress.reason": reason})
        log.debug("egress of %s: %s", session.label, reason)
        if tell:
            await browser.answer(502, reason)

    def _refuse(self, session: EgressSession, target: str, refusal: Refusal) -> None:
        metrics.blocked_requests_total.labels(reason=refusal.reason.value).inc()
        # A plain http request's target is its URL: the span names its host and port
        # only, as it does for the other egress events (a path may hold a secret too).
        name, port = url_host_port(target) if "://" in target else ("", 0)
        session.note(
            "egress.refused",
            {
                "farm.egress.target": host_port(name, port) if name else target,
                "farm.egress.address": refusal.address,
                "farm.egress.reason": refusal.reason.value,
            },
        )
        if session.record(BlockedRequest(target, refusal)):
            log.debug(
                "refused a request of %s to %s: %s", session.label, target, refusal.describe()
            )


async def _end_connections(session: EgressSession) -> None:
    connections = dict(session._connections)
    for task in connections:
        task.cancel()
    if connections:
        await asyncio.gather(*connections, return_exceptions=True)
    for writer in connections.values():
        writer.close()


def _tried(addresses: Sequence[IpAddress]) -> dict[str, list[str]]:
    """The addresses a connection may use, as an event's attribute."""
    return {"farm.egress.addresses": [str(address) for address in addresses]}


def _loopback(address: IpAddress) -> bool:
    """Whether `address` (or the IPv4 address it embeds) is a loopback address."""
    return address.is_loopback or any(inner.is_loopback for inner in embedded_ipv4(address))
