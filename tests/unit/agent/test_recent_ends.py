"""How long an agent lists a task whose attempt ended there, and holds its redelivery."""

from farm_agent.work.endings import RecentEnds
from tests.clock import MovedClock

HEARTBEAT = 1.0
HOLDER_LOST = 4.0


def test_a_plain_end_is_listed_one_heartbeat_interval_and_holds_nothing_here() -> None:
    clock = MovedClock()
    ends = RecentEnds(HEARTBEAT, HOLDER_LOST, clock)
    ends.note("task-1", end_mark_due=False)
    assert ends.listed == ["task-1"]
    assert not ends.awaits_mark("task-1")
    clock.now += HEARTBEAT + 0.1
    assert ends.listed == []


def test_a_lapsed_end_is_listed_and_held_until_its_mark_is_seen() -> None:
    clock = MovedClock()
    ends = RecentEnds(HEARTBEAT, HOLDER_LOST, clock)
    ends.note("task-1", end_mark_due=True)
    clock.now += HEARTBEAT + 0.1
    # The scheduler may not have applied the flagged end yet: past one heartbeat interval.
    assert ends.listed == ["task-1"]
    assert ends.awaits_mark("task-1")
    ends.mark_seen("task-1")
    assert ends.listed == []
    assert not ends.awaits_mark("task-1")


def test_a_lapsed_end_whose_mark_never_comes_is_let_go_after_the_holder_bound() -> None:
    clock = MovedClock()
    ends = RecentEnds(HEARTBEAT, HOLDER_LOST, clock)
    ends.note("task-1", end_mark_due=True)
    ends.note("task-2", end_mark_due=False)
    assert ends.listed == ["task-1", "task-2"]
    clock.now += HOLDER_LOST + 0.1
    assert ends.listed == []
    assert not ends.awaits_mark("task-1")
