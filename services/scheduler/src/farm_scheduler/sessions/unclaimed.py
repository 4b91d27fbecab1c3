"""Session browsers an agent holds that no open session on it claims, closed after a grace.

A CreateSession's scheduler may die after it ordered the open and before it recorded
the answer, or give up on an agent whose answer then came anyway and miss it with its
close: the agent then holds a browser that no ACTIVE session on that agent knows,
taking one of its places until its idle timeout. Agents list the sessions they hold
in every heartbeat; one listed with no ACTIVE session on that agent for longer than
`FARM_SCHEDULER_SESSION_UNCLAIMED_GRACE_SECONDS` is ordered closed there.

Each scheduler replica counts the grace from when it first saw the browser unclaimed,
on its own clock (no two machines' clocks are compared): a replica just started
waits a whole grace, and an opening in progress is never closed, as its agent lists
the session only just before it answers, and the answer is recorded at once. Replicas
may each order the close: the agent closes a session once.
"""

import enum
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from farm_core.sessions import CloseReason
from farm_scheduler.sessions.records import SessionRecord


class Unclaimed(enum.StrEnum):
    """Why no open session on its agent claims a browser (the metric's label)."""

    NO_SESSION = "no_session"
    """No such session: its CreateSession gave up and forgot it."""
    CLOSED = "closed"
    """The session is closed (e.g. AGENT_LOST while its agent was cut off)."""
    OTHER_AGENT = "other_agent"
    """Another agent holds the session: this one's opening was given up."""
    UNPLACED = "unplaced"
    """The session is still being placed: its scheduler gave up on this agent, or died."""


@dataclass(frozen=True)
class HeldBrowser:
    """A session browser an agent says it holds."""

    agent_id: str
    session_id: str


@dataclass(frozen=True)
class UnclaimedClose:
    """Why a held browser is unclaimed, and the reason its close order gives."""

    why: Unclaimed
    reason: CloseReason


def unclaimed_close(browser: HeldBrowser, session: SessionRecord | None) -> UnclaimedClose | None:
    """How to close `browser` given its session's row (None: no row); None if it is claimed.

    A closed session's own agent is told the session's close reason, so that the
    agent's report of the close (with its recording) keeps it; any other browser was
    opened for nobody: OPEN_ABANDONED, which changes no session.
    """
    if session is None:
        return UnclaimedClose(Unclaimed.NO_SESSION, CloseReason.OPEN_ABANDONED)
    if not session.active:
        try:
            reason = CloseReason(session.close_reason)
        except ValueError:
            reason = CloseReason.AGENT_LOST
        if session.agent_id != browser.agent_id:
            reason = CloseReason.OPEN_ABANDONED
        return UnclaimedClose(Unclaimed.CLOSED, reason)
    if session.agent_id == browser.agent_id:
        return None
    why = Unclaimed.UNPLACED if not session.agent_id else Unclaimed.OTHER_AGENT
    return UnclaimedClose(why, CloseReason.OPEN_ABANDONED)


class UnclaimedWatch:
    """Which browsers have been unclaimed for longer than the grace, as this replica saw."""

    def __init__(self, grace_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._grace_seconds = grace_seconds
        self._clock = clock
        self._since: dict[HeldBrowser, float] = {}

    def overdue(self, unclaimed: Iterable[HeldBrowser]) -> list[HeldBrowser]:
        """Of the browsers unclaimed now (all of them), those unclaimed for over the grace.

        A browser not among them is forgotten: should it be unclaimed again, its grace
        starts again. An overdue one counts from now once more, so that its close is
        ordered again only after another grace.
        """
        now = self._clock()
        since = {browser: self._since.get(browser, now) for browser in unclaimed}
        due = [browser for browser, first in since.items() if now - first > self._grace_seconds]
        for browser in due:
            since[browser] = now
        self._since = since
        return due
