"""The weighted choice of which priority an agent fetches next."""

from collections import Counter

import pytest

from farm_agent.work.priorities import PriorityChooser
from farm_core.queue import Priority

HIGH, NORMAL, LOW = Priority.HIGH, Priority.NORMAL, Priority.LOW
ALL = {HIGH, NORMAL, LOW}


def test_high_is_picked_first_when_every_priority_has_work() -> None:
    assert PriorityChooser((6, 3, 1)).pick(ALL) is HIGH


@pytest.mark.parametrize("weights", [(6, 3, 1), (5, 2, 1), (1, 1, 1), (10, 0, 1)])
def test_picks_follow_the_weights_exactly_over_whole_rounds(weights: tuple[int, int, int]) -> None:
    chooser = PriorityChooser(weights)
    rounds = 50
    picks = Counter(chooser.pick(ALL) for _ in range(rounds * sum(weights)))
    assert [picks[HIGH], picks[NORMAL], picks[LOW]] == [w * rounds for w in weights]


def test_every_window_of_one_round_holds_each_share() -> None:
    chooser = PriorityChooser((6, 3, 1))
    picks = [chooser.pick(ALL) for _ in range(100)]
    for start in range(0, 100, 10):
        window = Counter(picks[start : start + 10])
        assert (window[HIGH], window[NORMAL], window[LOW]) == (6, 3, 1)


def test_low_is_still_served_while_high_work_keeps_coming() -> None:
    chooser = PriorityChooser((6, 3, 1))
    picks = [chooser.pick({HIGH, LOW}) for _ in range(1000)]
    # Normal's share falls back to high, but low keeps its own tenth.
    assert picks.count(LOW) == 100
    assert picks.count(HIGH) == 900
    assert LOW in picks[:10]


def test_an_empty_priority_falls_back_high_then_normal_then_low() -> None:
    chooser = PriorityChooser((0, 0, 1))  # always chooses low first
    assert chooser.pick({HIGH, NORMAL}) is HIGH
    assert chooser.pick({NORMAL}) is NORMAL
    assert chooser.pick({LOW, NORMAL}) is LOW


def test_nothing_is_picked_when_no_priority_has_work() -> None:
    assert PriorityChooser((6, 3, 1)).pick(set()) is None


def test_next_order_puts_the_weighted_pick_first_then_precedence() -> None:
    chooser = PriorityChooser((6, 3, 1))
    assert chooser.next_order() == [HIGH, NORMAL, LOW]
    assert chooser.next_order() == [NORMAL, HIGH, LOW]


@pytest.mark.parametrize("weights", [(1, 2), (0, 0, 0), (1, -1, 1)])
def test_bad_weights_are_refused(weights: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="weights"):
        PriorityChooser(weights)
