"""One MCP connection's browser: a farm session opened on first use and closed at the end.

Commands of one connection run one at a time (the farm runs a session's commands
in order anyway). The farm may take longer to open the session than a tool call
may wait (it waits for a free place, tries agent after agent): the opening then
goes on without the call, and the next call uses the session it opens, or the
close closes it once it is open. Giving up on CreateSession would not stop the
farm opening the session, and would leave it open, unknown, until its idle
timeout. The console messages and requests the console and network tools
collected are kept, the newest few hundred, so that each such tool shows what
happened since the browser opened, not only since it was last called.
"""

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

import anyio
import grpc

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_mcp_tools.farm import Credentials, FarmApi, FarmCallFailed

log = logging.getLogger(__name__)

# A call stops waiting for its session to open this much before its own time limit,
# so that it can say that the opening goes on.
STILL_OPENING_MARGIN_SECONDS = 0.5

# Closes of sessions whose opening outlived the close, kept until done (asyncio holds
# only weak references to tasks).
_late_closes: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class BrowserSettings:
    """How a connection's farm session is opened, and how much of its logs is kept."""

    # Closed by the farm after this long without a tool call.
    idle_timeout_seconds: int = 300
    labels: tuple[tuple[str, str], ...] = (("opened-by", "mcp"),)
    # Console messages and requests kept for the log tools, newest last.
    max_log_entries: int = 500
    # The time limit of CreateSession, which outlives a tool call that gives up on it.
    open_seconds: float = 600.0


class SessionEnded(Exception):
    """The connection's farm session has closed (idle, lifetime, agent lost...)."""


class StillOpening(Exception):
    """The farm has not opened the connection's session within the tool call's time."""


class FarmBrowser:
    """The farm session behind one MCP connection."""

    def __init__(self, farm: FarmApi, settings: BrowserSettings) -> None:
        self._farm = farm
        self._settings = settings
        self._lock = anyio.Lock()
        self.session_id = ""
        self._opening: asyncio.Task[sessions_pb2.Session] | None = None
        self.last_used = time.monotonic()
        self.console: deque[tasks_pb2.ConsoleMessage] = deque(maxlen=settings.max_log_entries)
        self.network: deque[tasks_pb2.NetworkRequest] = deque(maxlen=settings.max_log_entries)

    @property
    def farm(self) -> FarmApi:
        """The farm this browser lives in."""
        return self._farm

    async def run(
        self, command: sessions_pb2.SessionCommand, credentials: Credentials, time_limit: float
    ) -> tasks_pb2.TaskResult:
        """Runs `command` on the session, opening it first if there is none.

        Raises SessionEnded when the farm has closed the session meanwhile (the
        next call opens a new one), StillOpening when the session is not open by
        the deadline (the next call uses it), FarmCallFailed for any other refusal.
        """
        deadline = time.monotonic() + time_limit
        async with self._lock:
            self.last_used = time.monotonic()
            if not self.session_id:
                self.session_id = await self._opened(credentials, deadline)
            try:
                result = await self._farm.run_command(
                    self.session_id, command, credentials, _left(deadline)
                )
            except FarmCallFailed as failure:
                if _is_closed(failure):
                    ended = self.session_id
                    self._forget()
                    raise SessionEnded(
                        f"the browser (farm session {ended}) has closed: {failure.details}; "
                        "the next tool call opens a new one"
                    ) from failure
                raise
            self.console.extend(result.console)
            self.network.extend(result.network)
            self.last_used = time.monotonic()
            return result

    async def close(
        self, credentials: Credentials, time_limit: float
    ) -> sessions_pb2.Session | None:
        """Closes the farm session, if one is open; the closed session, or None."""
        async with self._lock:
            opening, self._opening = self._opening, None
            if not self.session_id and opening is not None:
                if not opening.done():
                    _close_once_open(self._farm, opening, credentials, time_limit)
                    return None
                if opening.cancelled() or opening.exception() is not None:
                    return None
                self.session_id = opening.result().id
            if not self.session_id:
                return None
            session_id = self.session_id
            self._forget()
            return await self._farm.close_session(session_id, credentials, time_limit)

    async def _opened(self, credentials: Credentials, deadline: float) -> str:
        """The id of the session opened now, or by the opening an earlier call left."""
        if self._opening is None:
            spec = sessions_pb2.SessionSpec(
                idle_timeout_seconds=self._settings.idle_timeout_seconds,
                labels=dict(self._settings.labels),
            )
            self._opening = asyncio.create_task(
                self._farm.open_session(spec, credentials, self._settings.open_seconds)
            )
            self._opening.add_done_callback(_retrieve)
        opening = self._opening
        try:
            waiting = _left(deadline) - STILL_OPENING_MARGIN_SECONDS
            session = await asyncio.wait_for(asyncio.shield(opening), max(waiting, 0.001))
        except TimeoutError:
            raise StillOpening(
                "the farm has not opened the browser yet (it may wait for a free place); "
                "it goes on opening, and the next tool call uses it"
            ) from None
        except BaseException:
            if opening.done():
                self._opening = None
            raise
        self._opening = None
        return session.id

    def _forget(self) -> None:
        self.session_id = ""
        self.console.clear()
        self.network.clear()


def _retrieve(opening: "asyncio.Task[sessions_pb2.Session]") -> None:
    """Takes a failed opening's error, so that one no call awaited is not reported as lost."""
    if not opening.cancelled():
        opening.exception()


def _close_once_open(
    farm: FarmApi,
    opening: "asyncio.Task[sessions_pb2.Session]",
    credentials: Credentials,
    time_limit: float,
) -> None:
    """Closes the session `opening` opens, when it has; nothing if it opens none."""

    async def close() -> None:
        try:
            session = await opening
            await farm.close_session(session.id, credentials, time_limit)
        except FarmCallFailed as failure:
            log.warning("a farm session opened after its connection closed: %s", failure)

    task = asyncio.create_task(close())
    _late_closes.add(task)
    task.add_done_callback(_late_closes.discard)


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


def _is_closed(failure: FarmCallFailed) -> bool:
    """Whether the farm refused the command because the session has closed."""
    return failure.code is grpc.StatusCode.FAILED_PRECONDITION and " is closed" in failure.details
