"""One MCP connection's browser: a farm session opened on first use and closed at the end.

Commands of one connection run one at a time (the farm runs a session's commands
in order anyway). The console messages and requests the console and network
tools collected are kept, the newest few hundred, so that each such tool shows
what happened since the browser opened, not only since it was last called.
"""

import time
from collections import deque
from dataclasses import dataclass

import anyio
import grpc

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_mcp_tools.farm import Credentials, FarmApi, FarmCallFailed


@dataclass(frozen=True)
class BrowserSettings:
    """How a connection's farm session is opened, and how much of its logs is kept."""

    # Closed by the farm after this long without a tool call.
    idle_timeout_seconds: int = 300
    labels: tuple[tuple[str, str], ...] = (("opened-by", "mcp"),)
    # Console messages and requests kept for the log tools, newest last.
    max_log_entries: int = 500


class SessionEnded(Exception):
    """The connection's farm session has closed (idle, lifetime, agent lost...)."""


class FarmBrowser:
    """The farm session behind one MCP connection."""

    def __init__(self, farm: FarmApi, settings: BrowserSettings) -> None:
        self._farm = farm
        self._settings = settings
        self._lock = anyio.Lock()
        self.session_id = ""
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
        next call opens a new one), FarmCallFailed for any other refusal.
        """
        deadline = time.monotonic() + time_limit
        async with self._lock:
            self.last_used = time.monotonic()
            if not self.session_id:
                spec = sessions_pb2.SessionSpec(
                    idle_timeout_seconds=self._settings.idle_timeout_seconds,
                    labels=dict(self._settings.labels),
                )
                session = await self._farm.open_session(spec, credentials, _left(deadline))
                self.session_id = session.id
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
            if not self.session_id:
                return None
            session_id = self.session_id
            self._forget()
            return await self._farm.close_session(session_id, credentials, time_limit)

    def _forget(self) -> None:
        self.session_id = ""
        self.console.clear()
        self.network.clear()


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


def _is_closed(failure: FarmCallFailed) -> bool:
    """Whether the farm refused the command because the session has closed."""
    return failure.code is grpc.StatusCode.FAILED_PRECONDITION and " is closed" in failure.details
