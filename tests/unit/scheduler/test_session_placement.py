"""Where the scheduler opens a session: the agents ranked by free places, and `Openings`."""

import datetime as dt

from farm.queue.v1 import queue_pb2
from farm_core.timestamps import to_timestamp
from farm_scheduler.sessions.placement import (
    KEEP_PLACED_SECONDS,
    Candidate,
    Openings,
    Ranking,
    candidates,
    free_places,
)
from tests.clock import MovedClock

NOW = dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC)


def beat(
    agent_id: str,
    *,
    concurrency: int = 2,
    tasks: int = 0,
    sessions: int = 0,
    region: str = "",
    draining: bool = False,
    age_seconds: float = 1.0,
    endpoint: str = "127.0.0.1:7150",
) -> queue_pb2.AgentHeartbeat:
    return queue_pb2.AgentHeartbeat(
        agent_id=agent_id,
        region=region,
        concurrency=concurrency,
        running_task_ids=[f"t{index}" for index in range(tasks)],
        session_ids=[f"s{index}" for index in range(sessions)],
        draining=draining,
        session_endpoint=endpoint,
        heartbeat_time=to_timestamp(NOW - dt.timedelta(seconds=age_seconds)),
    )


def test_the_agent_with_the_most_free_places_comes_first() -> None:
    beats = [
        beat("busy", concurrency=4, tasks=3),
        beat("idle", concurrency=4),
        beat("half", concurrency=4, tasks=1, sessions=1),
    ]
    assert [(c.agent_id, c.free_places) for c in candidates(beats, {}, "", NOW, 15)] == [
        ("idle", 4),
        ("half", 2),
        ("busy", 1),
    ]


def test_draining_stale_or_endpointless_agents_and_other_regions_are_left_out() -> None:
    beats = [
        beat("draining", draining=True),
        beat("stale", age_seconds=20),
        beat("old-agent", endpoint=""),
        beat("eu", region="eu"),
        beat("us", region="us"),
    ]
    assert [c.agent_id for c in candidates(beats, {}, "us", NOW, 15)] == ["us"]
    assert [c.agent_id for c in candidates(beats, {}, "", NOW, 15)] == ["eu", "us"]
    assert free_places(beat("x", concurrency=3, tasks=1, sessions=1)) == 1


def test_an_agent_that_looked_full_at_its_last_beat_is_still_tried_last() -> None:
    beats = [beat("full", tasks=1, sessions=1), beat("free")]
    assert [(c.agent_id, c.free_places) for c in candidates(beats, {}, "", NOW, 15)] == [
        ("free", 2),
        ("full", 0),
    ]


def test_a_session_in_the_heartbeat_and_in_the_sessions_table_counts_once() -> None:
    # The table knows x and y before the agents' next beats list them.
    beats = [beat("a", concurrency=4, sessions=1), beat("b", concurrency=3)]
    placed = {"a": {"s0", "x"}, "b": {"y"}, "gone-agent": {"z"}}
    # A tie: the agent with the fewer sessions first.
    assert candidates(beats, placed, "", NOW, 15) == [
        Candidate("b", 2, frozenset({"y"})),
        Candidate("a", 2, frozenset({"s0", "x"})),
    ]
    assert free_places(beat("c", concurrency=3, tasks=1, sessions=1), {"s0", "w"}) == 0


def test_a_choice_counts_the_sessions_being_opened_on_each_agent() -> None:
    openings = Openings(MovedClock())
    ranking = Ranking([Candidate("a", 2), Candidate("b", 2), Candidate("c", 1)], read_at=100.0)
    assert openings.best(ranking, set()) == Candidate("a", 2)
    with openings.placing("s1"):
        openings.opening("s1", "a")
        # a has 1 place left once its opening counts: b (2) goes first.
        assert openings.best(ranking, set()) == Candidate("b", 2)
        with openings.placing("s2"), openings.placing("s3"):
            openings.opening("s2", "b")
            openings.opening("s3", "b")
            assert openings.best(ranking, set()) == Candidate("a", 2)
            assert openings.best(ranking, {"a"}) == Candidate("c", 1)
            # s3 was refused on b and is being opened on c now.
            openings.opening("s3", "c")
            assert openings.pending(Candidate("b", 2), 100.0) == 1
            assert openings.pending(Candidate("c", 1), 100.0) == 1
    # Given up (never recorded placed): counted nowhere.
    assert openings.pending(Candidate("a", 2), 100.0) == 0
    assert openings.best(ranking, {"a", "b", "c"}) is None


def test_a_placed_session_counts_until_a_ranking_read_after_its_placement_was_recorded() -> None:
    clock = MovedClock()
    openings = Openings(clock)
    before = Ranking([Candidate("a", 2), Candidate("b", 2)], read_at=clock.now)
    with openings.placing("s1"):
        openings.opening("s1", "a")
        clock.now += 1
        openings.recorded("s1")
    # Its agent's heartbeat does not list it yet, and the table was read before.
    assert openings.best(before, set()) == Candidate("b", 2)
    # A table read after the placement lists it (its candidate then counts it) ...
    clock.now += 1
    after = Ranking([Candidate("b", 2), Candidate("a", 1, frozenset({"s1"}))], clock.now)
    assert openings.pending(after.candidates[1], after.read_at) == 0
    # ... and one that does not has seen it closed.
    assert openings.pending(Candidate("a", 2), after.read_at) == 0
    # One read before, listing it through the heartbeat, counts it once.
    listed = Ranking([Candidate("a", 1, frozenset({"s1"})), Candidate("b", 1)], before.read_at)
    assert openings.pending(listed.candidates[0], listed.read_at) == 0
    assert openings.best(listed, set()) == Candidate("a", 1, frozenset({"s1"}))
    # Placed sessions are forgotten once no read could still miss them.
    clock.now += KEEP_PLACED_SECONDS + 1
    with openings.placing("s2"):
        pass
    assert openings.pending(Candidate("a", 2), before.read_at) == 0
