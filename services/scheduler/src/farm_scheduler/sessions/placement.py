"""Which agents may take a new session, best first: the wanted region, most free places."""

import collections
import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from farm.queue.v1 import queue_pb2
from farm_core.timestamps import from_timestamp


@dataclass(frozen=True)
class Candidate:
    """An agent that may take a session, and how many places it has free."""

    agent_id: str
    free_places: int


def free_places(heartbeat: queue_pb2.AgentHeartbeat) -> int:
    """Places neither a running task nor an open session holds, as the heartbeat tells."""
    return heartbeat.concurrency - len(heartbeat.running_task_ids) - len(heartbeat.session_ids)


def candidates(
    heartbeats: Iterable[queue_pb2.AgentHeartbeat],
    region: str,
    now: dt.datetime,
    fresh_seconds: float,
) -> list[Candidate]:
    """Agents in `region` (any agent for ""), most free places first.

    An agent that is draining, serves no session endpoint, or whose last heartbeat is
    older than `fresh_seconds` is left out. One whose heartbeat shows no free place is
    still tried, last: a place may have come free since that beat, and the agent
    itself knows. Ties go to the agent with the fewer sessions.
    """
    ranked: list[tuple[int, int, str]] = []
    for heartbeat in heartbeats:
        if heartbeat.draining or not heartbeat.session_endpoint:
            continue
        if region and heartbeat.region != region:
            continue
        if heartbeat.HasField("heartbeat_time"):
            age = (now - from_timestamp(heartbeat.heartbeat_time)).total_seconds()
            if age > fresh_seconds:
                continue
        places = free_places(heartbeat)
        ranked.append((-places, len(heartbeat.session_ids), heartbeat.agent_id))
    return [Candidate(agent_id, -negative) for negative, _, agent_id in sorted(ranked)]


class Openings:
    """Sessions this scheduler is opening now, by agent.

    An agent's heartbeat shows a session only once it has opened, so sessions created
    at once would all read the same free places and go to the same agent, the later
    ones waiting there for a place (`FARM_AGENT_SESSION_PLACE_WAIT_SECONDS`) before
    trying the next. Each choice counts the openings under way.
    """

    def __init__(self) -> None:
        self._by_agent: collections.Counter[str] = collections.Counter()

    def pending(self, agent_id: str) -> int:
        """Sessions being opened on `agent_id` now."""
        return self._by_agent[agent_id]

    def best(self, ranked: list[Candidate], tried: set[str]) -> Candidate | None:
        """The untried candidate with the most places left once openings are counted.

        Ties keep `ranked`'s order (`max` keeps the first of equals). Called with no
        await between it and `opening`, so that a concurrent choice sees this one.
        """
        left = [candidate for candidate in ranked if candidate.agent_id not in tried]
        if not left:
            return None
        return max(
            left,
            key=lambda candidate: candidate.free_places - self.pending(candidate.agent_id),
        )

    @contextlib.contextmanager
    def opening(self, agent_id: str) -> Iterator[None]:
        """Counts a session being opened on `agent_id` while the block runs."""
        self._by_agent[agent_id] += 1
        try:
            yield
        finally:
            self._by_agent[agent_id] -= 1
            if not self._by_agent[agent_id]:
                del self._by_agent[agent_id]
