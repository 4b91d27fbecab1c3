"""One MCP connection's browser: a farm session opened on first use and closed at the end.

Commands of one connection run one at a time (the farm runs a session's commands
in order anyway). The farm may take longer to open the session than a tool call
may wait (it waits for a free place, tries agent after agent): the opening then
goes on without the call, and the next call uses the session it opens, or the
close closes it once it is open. Giving up on CreateSession would not stop the
farm opening the session, and would leave it open, unknown, until its idle
timeout. Such late closes belong to the server that made the browsers
(LateCloses), which waits for them when it stops. The console messages and
requests the console and network tools collected are kept, the newest few
hundred, so that each such tool shows what happened since the browser opened,
not only since it was last called.
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import grpc

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_mcp_tools.farm import Credentials, FarmApi, FarmCallFailed

log = logging.getLogger(__name__)

# A call stops waiting for its session to open this much before its own time limit,
# so that it can say that the opening goes on.
STILL_OPENING_MARGIN_SECONDS = 0.5


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


class LateCloses:
    """The closes of farm sessions whose opening outlived their browser's close.

    Owned by the server that makes the browsers: they run in its task group
    (`running`), whose end waits up to `wait_seconds` for them and then cancels the
    rest, with their openings (a session the farm opens all the same ends at its
    idle timeout).
    """

    def __init__(self, wait_seconds: float) -> None:
        self._wait_seconds = wait_seconds
        self._group: anyio.abc.TaskGroup | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Runs the closes started within the block; at its end waits for them, bounded."""
        async with anyio.create_task_group() as group:
            self._group = group
            try:
                yield
            finally:
                self._group = None
                group.cancel_scope.deadline = anyio.current_time() + self._wait_seconds

    def start(self, close: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Runs `close` in the background until done, or until the server's end cancels it."""
        if self._group is None:
            raise RuntimeError("late closes are not running: the server has stopped")
        self._group.start_soon(close, name="late-close")


class SessionEnded(Exception):
    """The connection's farm session has closed (idle, lifetime, agent lost...)."""


class StillOpening(Exception):
    """The farm has not opened the connection's session within the tool call's time."""


class StillBusy(Exception):
    """The farm still runs the command of a tool call of this connection that was cancelled."""


class FarmBrowser:
    """The farm session behind one MCP connection."""

    def __init__(self, farm: FarmApi, settings: BrowserSettings, late_closes: LateCloses) -> None:
        self._farm = farm
        self._settings = settings
        self._late_closes = late_closes
        self._lock = anyio.Lock()
        self.session_id = ""
        self._opening: asyncio.Task[sessions_pb2.Session] | None = None
        # The farm call of a tool call cancelled by its client or its time limit: the
        # farm cannot stop a command it has begun, so the next command waits for its
        # answer rather than queue behind it at the agent, its time limit running there.
        self._leftover: asyncio.Task[tasks_pb2.TaskResult] | None = None
        self.last_used = time.monotonic()
        self.console: deque[tasks_pb2.ConsoleMessage] = deque(maxlen=settings.max_log_entries)
        self.network: deque[tasks_pb2.NetworkRequest] = deque(maxlen=settings.max_log_entries)
        # Whether this session has answered a snapshot: element references come from one.
        self.snapshot_taken = False
        # Why an earlier browser of this connection closed, said by the next call.
        self._closed_before = ""

    @property
    def farm(self) -> FarmApi:
        """The farm this browser lives in."""
        return self._farm

    def closed_before(self, why: str) -> None:
        """Has the next run raise SessionEnded(why): the connection's earlier browser closed.

        A browser closed behind the assistant's back (idle) must not be replaced by a
        blank one without a word: the page it was on is gone.
        """
        self._closed_before = why

    async def run(
        self, command: sessions_pb2.SessionCommand, credentials: Credentials, time_limit: float
    ) -> tasks_pb2.TaskResult:
        """Runs `command` on the session, opening it first if there is none.

        Raises SessionEnded when the farm has closed the session meanwhile (the
        next call opens a new one), StillOpening when the session is not open by
        the deadline (the next call uses it), StillBusy when the command of a
        cancelled call still runs at the deadline, FarmCallFailed for any other refusal.
        """
        deadline = time.monotonic() + time_limit
        async with self._lock:
            self.last_used = time.monotonic()
            if self._closed_before:
                why, self._closed_before = self._closed_before, ""
                raise SessionEnded(why)
            if not self.session_id:
                self.session_id = await self._opened(credentials, deadline)
            await self._after_leftover(deadline)
            farm_call = asyncio.ensure_future(
                self._farm.run_command(self.session_id, command, credentials, _left(deadline))
            )
            try:
                result = await asyncio.shield(farm_call)
            except asyncio.CancelledError:
                if not farm_call.done():
                    farm_call.add_done_callback(_retrieve)
                    self._leftover = farm_call
                raise
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
            self.snapshot_taken = self.snapshot_taken or command.HasField("snapshot")
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
                    self._late_closes.start(
                        lambda: _close_once_open(self._farm, opening, credentials, time_limit)
                    )
                    return None
                if opening.cancelled() or opening.exception() is not None:
                    return None
                self.session_id = opening.result().id
            if not self.session_id:
                return None
            session_id = self.session_id
            self._forget()
            return await self._farm.close_session(session_id, credentials, time_limit)

    async def _after_leftover(self, deadline: float) -> None:
        """Waits for the answer to a cancelled call's command, if any; StillBusy at the deadline."""
        leftover = self._leftover
        if leftover is None:
            return
        waiting = _left(deadline) - STILL_OPENING_MARGIN_SECONDS
        done, _ = await asyncio.wait({leftover}, timeout=max(waiting, 0.001))
        if not done:
            raise StillBusy(
                "the browser is still running the command of an earlier tool call that ended "
                "without its answer (cancelled, or past the tool time limit): the farm cannot "
                "stop a command it has begun, and it ends within its own time limit; this "
                "call's command was not sent: call it again"
            )
        self._leftover = None
        if not leftover.cancelled() and leftover.exception() is None:
            self.console.extend(leftover.result().console)
            self.network.extend(leftover.result().network)

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
        self._leftover = None
        self.snapshot_taken = False
        self.console.clear()
        self.network.clear()


def _retrieve(call: "asyncio.Future[Any]") -> None:
    """Takes a failed farm call's error, so that one no call awaited is not reported as lost."""
    if not call.cancelled():
        call.exception()


async def _close_once_open(
    farm: FarmApi,
    opening: "asyncio.Task[sessions_pb2.Session]",
    credentials: Credentials,
    time_limit: float,
) -> None:
    """Closes the session `opening` opens, when it has; nothing if it opens none.

    Cancelled (the server stopping), it cancels the opening too.
    """
    try:
        await asyncio.wait({opening})
    except asyncio.CancelledError:
        opening.cancel()
        raise
    if opening.cancelled() or opening.exception() is not None:
        return  # It opened none (its error was taken by _retrieve).
    try:
        await farm.close_session(opening.result().id, credentials, time_limit)
    except FarmCallFailed as failure:
        log.warning("a farm session opened after its connection closed: %s", failure)
    except Exception:
        # No caller hears of it, and an error would end the server's task group.
        log.exception("closing a farm session opened after its connection closed failed")


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


def _is_closed(failure: FarmCallFailed) -> bool:
    """Whether the farm refused the command because the session has closed."""
    return failure.code is grpc.StatusCode.FAILED_PRECONDITION and " is closed" in failure.details
