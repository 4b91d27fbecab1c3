"""One listener of the egress guard, a task's: its port and what the guard refused for it."""

import asyncio
from dataclasses import dataclass, field

from opentelemetry import trace

from farm_agent.egress.proxy_wire import host_port, target_host_port
from farm_core.egress.address_policy import Refusal

FALLBACK_LISTEN_HOST = "127.0.0.1"
# A task keeps the first this many distinct refusals; the metric counts them all.
MAX_BLOCKED_KEPT = 100


@dataclass(frozen=True)
class BlockedRequest:
    """A request the proxy refused: what was asked for and the refusal."""

    target: str
    refusal: Refusal

    def describe(self) -> str:
        """The refusal as a sentence that names the host, the address and why."""
        return self.refusal.describe()


@dataclass
class EgressSession:
    """One task's listener: its port, the requests it refused and the connections it failed."""

    label: str
    host: str = FALLBACK_LISTEN_HOST
    port: int = 0
    blocked: list[BlockedRequest] = field(default_factory=list)
    # "host:port" -> why the last connection to it failed (unresolvable, refused, timeout).
    failures: dict[str, str] = field(default_factory=dict)
    # The "host:port" of those failures whose name does not exist (NXDOMAIN): final.
    nonexistent: set[str] = field(default_factory=set)
    # The span of the work this listener serves: each decision is one of its events.
    span: trace.Span = trace.INVALID_SPAN
    # Each connection's task and its socket's writer: a task cancelled before it ran
    # never reaches its own close, so the writer is closed for it.
    _connections: dict[asyncio.Task[None], asyncio.StreamWriter] = field(default_factory=dict)

    def note(self, event: str, attributes: dict[str, str | int | list[str]]) -> None:
        """Adds a decision to the span of the work served, while that span lasts.

        A session's page goes on making requests between its commands, after the
        span of the open or of the last command has ended.
        """
        if self.span.is_recording():
            self.span.add_event(event, attributes)

    @property
    def proxy(self) -> dict[str, str]:
        """Playwright's `proxy` option of a browser context that uses this listener."""
        return {"server": f"http://{self.host}:{self.port}"}

    def refusal_for(self, host: str, port: int) -> BlockedRequest | None:
        """The refusal of a request to `host`:`port`, if there was one."""
        wanted = host_port(host, port)
        for blocked in self.blocked:
            if blocked.target == wanted or target_host_port(blocked.target) == wanted:
                return blocked
        return None

    def record(self, blocked: BlockedRequest) -> bool:
        """Keeps a refusal (once per target and reason); True if it was new."""
        if any(
            kept.target == blocked.target and kept.refusal == blocked.refusal
            for kept in self.blocked
        ):
            return False
        if len(self.blocked) < MAX_BLOCKED_KEPT:
            self.blocked.append(blocked)
        return True
