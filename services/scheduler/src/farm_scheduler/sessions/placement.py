"""Which agents may take a new session, best first: the wanted region, most free places."""

import datetime as dt
from collections.abc import Iterable
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
