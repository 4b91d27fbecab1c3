"""Records a browser context's console messages and requests into bounded buffers.

A task's context is observed from before its navigation to its end; a session's
default context for the session's whole life. Each kind of record is read by
readers ("console", "network", "har") that each get what came since they last
read, so a session command reports only what happened since the previous command
that asked for it. The buffers keep the newest records: a page that logs without
end costs a bounded amount of memory.
"""

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

from google.protobuf.timestamp_pb2 import Timestamp
from playwright.async_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    WebError,
)
from playwright.async_api import Error as PlaywrightError

from farm.tasks.v1 import tasks_pb2
from farm_agent.egress.proxy_wire import url_host_port
from farm_agent.egress.session import EgressSession

MAX_CONSOLE_MESSAGES = 200
"""Console messages kept (the newest); older ones are dropped."""
MAX_CONSOLE_TEXT_CHARS = 1000
"""A console message's text is cut at this many characters (marked with "…")."""
MAX_RECORDED_REQUESTS = 1000
"""Requests kept (the newest), for the network log and the HAR alike."""
MAX_LOGGED_URL_CHARS = 500
"""A URL in the network log, the HAR or a console source is cut at this many characters."""
NETWORK_QUIET_SECONDS = 0.5
"""How long a page must have no request open for its network to count as idle (Playwright's)."""

# Playwright's console message types, as the result's levels; the rest are "log".
_LEVELS = {
    "error": "error",
    "assert": "error",
    "warning": "warning",
    "info": "info",
    "debug": "debug",
}
GUARD_REFUSAL = "refused by the egress guard: "
"""How a request's failure starts when the egress guard refused it."""

Record = TypeVar("Record")


class BoundedLog(Generic[Record]):
    """The newest `limit` records; each reader takes what came since it last took."""

    def __init__(self, limit: int) -> None:
        self._records: deque[tuple[int, Record]] = deque(maxlen=limit)
        self._added = 0
        self._taken: dict[str, int] = {}

    def add(self, record: Record) -> None:
        """Keeps `record`, dropping the oldest one when full."""
        self._added += 1
        self._records.append((self._added, record))

    def take(self, reader: str) -> list[Record]:
        """The records still kept that `reader` has not taken yet, oldest first."""
        since = self._taken.get(reader, 0)
        self._taken[reader] = self._added
        return [record for number, record in self._records if number > since]


@dataclass(eq=False)
class RecordedRequest:
    """One request of the page as far as it went: its answer, its end, why it failed."""

    request: Request
    # Wall-clock seconds when the page asked for it.
    started: float
    started_monotonic: float
    response: Response | None = None
    ended: bool = False
    # The HTTP status; 0 before an answer, and for a request the egress guard refused.
    status: int = 0
    failure: str = ""
    duration_ms: float = 0.0
    # Playwright's ResourceTiming at the end (milliseconds after `started`; -1 unknown).
    timing: dict[str, float] = field(default_factory=dict)
    # Bytes of the answer's body as received; -1 until measured or when unknown.
    body_bytes: int = -1
    headers_bytes: int = -1

    @property
    def url(self) -> str:
        """The URL without its query, fragment or credentials."""
        return public_url(self.request.url)


class ContextObserver:
    """Listens to one browser context's console, uncaught errors and requests."""

    def __init__(self, context: BrowserContext, egress: EgressSession) -> None:
        self._egress = egress
        self.console: BoundedLog[tasks_pb2.ConsoleMessage] = BoundedLog(MAX_CONSOLE_MESSAGES)
        self.requests: BoundedLog[RecordedRequest] = BoundedLog(MAX_RECORDED_REQUESTS)
        # Requests not ended yet, by Playwright's request object; bounded like the log.
        self._open: dict[Request, RecordedRequest] = {}
        # Set when a request starts or ends; the monotonic time it last did.
        self._network_changed = asyncio.Event()
        self._network_changed_at = time.monotonic()
        self._context = context
        context.on("console", self._on_console)
        context.on("weberror", self._on_error)
        context.on("request", self._on_request)
        context.on("response", self._on_response)
        context.on("requestfinished", self._on_finished)
        context.on("requestfailed", self._on_failed)

    def stop(self) -> None:
        """Stops listening (a warm context goes on to other tasks)."""
        self._context.remove_listener("console", self._on_console)
        self._context.remove_listener("weberror", self._on_error)
        self._context.remove_listener("request", self._on_request)
        self._context.remove_listener("response", self._on_response)
        self._context.remove_listener("requestfinished", self._on_finished)
        self._context.remove_listener("requestfailed", self._on_failed)

    def open_requests(self, page: Page) -> list[RecordedRequest]:
        """The requests of `page`'s frames that have not ended yet, oldest first."""
        return [entry for entry in self._open.values() if _page_of(entry.request) is page]

    async def network_idle(self, page: Page) -> None:
        """Returns once `page` has had no request open for NETWORK_QUIET_SECONDS.

        The quiet spell starts at the call at the earliest, not at the page's load:
        Playwright's own "networkidle" state is reached once per document, so a wait
        for it after a click returned before the fetch the click started. Requests
        open since before the call count (a session's click in an earlier command).
        Has no time limit of its own: the caller bounds it.
        """
        quiet_from = time.monotonic()
        while True:
            self._network_changed.clear()
            if self.open_requests(page):
                await self._network_changed.wait()
                continue
            quiet_for = time.monotonic() - max(quiet_from, self._network_changed_at)
            if quiet_for >= NETWORK_QUIET_SECONDS:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(NETWORK_QUIET_SECONDS - quiet_for):
                    await self._network_changed.wait()

    def _network_change(self) -> None:
        self._network_changed_at = time.monotonic()
        self._network_changed.set()

    async def measure(self, recorded: list[RecordedRequest]) -> None:
        """Fills in the body and header sizes of the ended requests that lack them."""
        # A failed request's answer (if any) did not arrive whole, or was the guard's.
        unmeasured = [
            entry
            for entry in recorded
            if entry.ended and not entry.failure and entry.response and entry.body_bytes < 0
        ]
        measured = await asyncio.gather(
            *(entry.request.sizes() for entry in unmeasured), return_exceptions=True
        )
        for entry, sizes in zip(unmeasured, measured, strict=True):
            if isinstance(sizes, PlaywrightError):
                continue  # Its page has closed since: the size is not known any more.
            if isinstance(sizes, BaseException):
                raise sizes
            entry.body_bytes = sizes["responseBodySize"]
            entry.headers_bytes = sizes["responseHeadersSize"]

    def _on_console(self, message: ConsoleMessage) -> None:
        location = message.location
        source = source_of(location.get("url", ""), location.get("lineNumber", 0))
        self.console.add(console_message(_LEVELS.get(message.type, "log"), message.text, source))

    def _on_error(self, web_error: WebError) -> None:
        error, location = web_error.error, web_error.location
        named = f"{error.name}: " if error.name else ""
        source = source_of(location.get("url", ""), location.get("line", 0))
        self.console.add(console_message("error", f"Uncaught {named}{error.message}", source))

    def _on_request(self, request: Request) -> None:
        entry = RecordedRequest(request, time.time(), time.monotonic())
        self.requests.add(entry)
        self._open[request] = entry
        if len(self._open) > MAX_RECORDED_REQUESTS:
            # A request that never ends (a long poll) is given up on, oldest first.
            del self._open[next(iter(self._open))]
        self._network_change()

    def _on_response(self, response: Response) -> None:
        entry = self._open.get(response.request)
        if entry is not None:
            entry.response = response
            entry.status = response.status

    def _on_finished(self, request: Request) -> None:
        entry = self._open.pop(request, None)
        if entry is None:
            return
        entry.timing = {
            phase: float(value)
            for phase, value in request.timing.items()
            if isinstance(value, int | float)
        }
        response_end = entry.timing.get("responseEnd", -1)
        self._end(entry, response_end if response_end >= 0 else None)

    def _on_failed(self, request: Request) -> None:
        entry = self._open.pop(request, None)
        if entry is None:
            return
        entry.failure = request.failure or "failed"
        self._end(entry, None)

    def _end(self, entry: RecordedRequest, duration_ms: float | None) -> None:
        entry.ended = True
        self._network_change()
        if duration_ms is None:
            duration_ms = (time.monotonic() - entry.started_monotonic) * 1000
        entry.duration_ms = duration_ms
        host, port = url_host_port(entry.request.url)
        refused = self._egress.refusal_for(host, port) if host else None
        if refused is not None:
            # The guard's answer (403, or a refused tunnel) is not the server's.
            entry.status = 0
            entry.failure = GUARD_REFUSAL + refused.describe()


def _page_of(request: Request) -> Page | None:
    """The page whose frame made `request`; None for a service worker's own requests."""
    if request.service_worker is not None:
        return None
    return request.frame.page


def console_message(level: str, text: str, source: str) -> tasks_pb2.ConsoleMessage:
    """A console message as the result carries it, stamped now, its text cut."""
    if len(text) > MAX_CONSOLE_TEXT_CHARS:
        text = text[: MAX_CONSOLE_TEXT_CHARS - 1] + "…"
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return tasks_pb2.ConsoleMessage(level=level, text=text, source=source, time=stamp)


def source_of(url: str, zero_based_line: int) -> str:
    """The source "url:line" (the URL without its query, lines counted from 1), or empty."""
    return f"{public_url(url)}:{zero_based_line + 1}" if url else ""


def public_url(url: str) -> str:
    """`url` without its query, fragment and credentials (they may carry secrets), cut."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname:
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        try:
            port = parts.port
        except ValueError:
            port = None
        authority = f"{host}:{port}" if port is not None else host
        url = urlunsplit((parts.scheme, authority, parts.path, "", ""))
    else:
        url = url.split("?", 1)[0].split("#", 1)[0]
    return url[:MAX_LOGGED_URL_CHARS]
