"""RecentEnds: the tasks whose attempt ended lately, for the heartbeat's ending_task_ids."""

from farm_agent.work.recent_ends import RecentEnds


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_end_is_listed_for_the_interval_then_dropped() -> None:
    clock = Clock()
    ends = RecentEnds(5.0, clock)
    ends.add("a")
    clock.now += 3
    ends.add("b")
    assert ends.ids() == ["a", "b"]
    clock.now += 2.5
    assert ends.ids() == ["b"]
    clock.now += 3
    assert ends.ids() == []


def test_a_second_end_of_a_task_counts_from_then() -> None:
    clock = Clock()
    ends = RecentEnds(5.0, clock)
    ends.add("a")
    ends.add("b")
    clock.now += 4
    ends.add("a")
    clock.now += 2
    assert ends.ids() == ["a"]
