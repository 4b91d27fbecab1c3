"""Which agents may take a new session, best first: the wanted region, most free places.

An agent's places are held by its running tasks and by its sessions. The sessions are
known three ways, each late in its own way, and a session counts once however many
name it (by id):

- the agent's heartbeat lists the sessions it holds, but only from its next beat
  after each opened;
- the sessions table lists the ACTIVE sessions placed on each agent, by any scheduler
  replica, from the moment the replica recorded the placement;
- `Openings` holds the sessions this replica is placing now, and the ones it placed
  since that table was read.
"""

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

from farm.queue.v1 import queue_pb2
from farm_core.timestamps import from_timestamp

KEEP_PLACED_SECONDS = 60.0
"""How long a placed session stays in `Openings`: far longer than any read of the
sessions table that began before its placement was recorded may take."""


@dataclass(frozen=True)
class Candidate:
    """An agent that may take a session, how many places it has free, and its sessions."""

    agent_id: str
    free_places: int
    session_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Ranking:
    """The candidates, best first, and when the sessions table they count was read.

    `read_at` is `time.monotonic()` (`Openings`' clock) before the read began.
    """

    candidates: list[Candidate]
    read_at: float


def free_places(heartbeat: queue_pb2.AgentHeartbeat, placed: Collection[str] = frozenset()) -> int:
    """Places neither a running task nor a session holds: one in the heartbeat or `placed`."""
    sessions = set(heartbeat.session_ids) | set(placed)
    return heartbeat.concurrency - len(heartbeat.running_task_ids) - len(sessions)


def candidates(
    heartbeats: Iterable[queue_pb2.AgentHeartbeat],
    placed: Mapping[str, Collection[str]],
    region: str,
    now: dt.datetime,
    fresh_seconds: float,
) -> list[Candidate]:
    """Agents in `region` (any agent for ""), most free places first.

    `placed` is the ids of the sessions the sessions table holds open on each agent.
    An agent that is draining, serves no session endpoint, or whose last heartbeat is
    older than `fresh_seconds` is left out. One that looks full is still tried, last:
    a place may have come free since, and the agent itself knows. Ties go to the
    agent with the fewer sessions.
    """
    ranked: list[tuple[int, int, str, frozenset[str]]] = []
    for heartbeat in heartbeats:
        if heartbeat.draining or not heartbeat.session_endpoint:
            continue
        if region and heartbeat.region != region:
            continue
        if heartbeat.HasField("heartbeat_time"):
            age = (now - from_timestamp(heartbeat.heartbeat_time)).total_seconds()
            if age > fresh_seconds:
                continue
        sessions = frozenset(heartbeat.session_ids) | frozenset(placed.get(heartbeat.agent_id, ()))
        places = free_places(heartbeat, sessions)
        ranked.append((-places, len(sessions), heartbeat.agent_id, sessions))
    return [
        Candidate(agent_id, -negative, sessions)
        for negative, _, agent_id, sessions in sorted(ranked, key=lambda row: row[:3])
    ]


@dataclass
class _Placing:
    agent_id: str
    recorded_at: float | None = None


class Openings:
    """The sessions this scheduler replica is placing, or placed lately, by agent.

    A heartbeat shows a session only from the agent's next beat, and the sessions
    table only once its placement is recorded, so sessions created at once, or one
    right after another, would read the same free places and go to the same agent,
    the later ones waiting there for a place (`FARM_AGENT_SESSION_PLACE_WAIT_SECONDS`)
    or piling up on it. A session counts against the agent it is being opened on from
    the choice on, and, once placed, for every ranking read before its placement was
    recorded (a later read finds it in the sessions table).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: dict[str, _Placing] = {}

    def pending(self, candidate: Candidate, read_at: float) -> int:
        """Sessions of this replica's on the candidate that a ranking read at `read_at` missed."""
        return sum(
            1
            for session_id, placing in self._sessions.items()
            if placing.agent_id == candidate.agent_id
            and session_id not in candidate.session_ids
            and (placing.recorded_at is None or placing.recorded_at >= read_at)
        )

    def best(self, ranking: Ranking, tried: set[str]) -> Candidate | None:
        """The untried candidate with the most places left once `pending` is counted.

        Ties keep the ranking's order (`max` keeps the first of equals). Called with no
        await between it and `opening`, so that a concurrent choice sees this one.
        """
        left = [c for c in ranking.candidates if c.agent_id not in tried]
        if not left:
            return None
        return max(left, key=lambda c: c.free_places - self.pending(c, ranking.read_at))

    @contextlib.contextmanager
    def placing(self, session_id: str) -> Iterator[None]:
        """Holds the session's place while the block places it; kept a while if `recorded`."""
        try:
            yield
        finally:
            placing = self._sessions.get(session_id)
            if placing is not None and placing.recorded_at is None:
                del self._sessions[session_id]
            self._forget_old()

    def opening(self, session_id: str, agent_id: str) -> None:
        """The session is being opened on `agent_id` now (no longer on any agent before)."""
        self._sessions[session_id] = _Placing(agent_id)

    def recorded(self, session_id: str) -> None:
        """The session's placement is in the sessions table (committed) now."""
        placing = self._sessions.get(session_id)
        if placing is not None:
            placing.recorded_at = self._clock()

    def _forget_old(self) -> None:
        before = self._clock() - KEEP_PLACED_SECONDS
        old = [
            session_id
            for session_id, placing in self._sessions.items()
            if placing.recorded_at is not None and placing.recorded_at < before
        ]
        for session_id in old:
            del self._sessions[session_id]


def refusal_note(agent_id: str, message: str) -> str:
    """An agent's refusal as a 429 lists it: named once, by the agent itself if it did."""
    if message.startswith(f"agent {agent_id} "):
        return message
    return f"{agent_id}: {message}"
