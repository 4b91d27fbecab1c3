"""Which priority an agent fetches next: smooth weighted round-robin with fallback.

High work goes first, but each priority with a weight gets its share of fetches
whenever it has work, so low work is never starved by a steady flow of high work.
"""

from collections.abc import Collection, Sequence

from farm_core.queue import Priority

PRECEDENCE: tuple[Priority, ...] = (Priority.HIGH, Priority.NORMAL, Priority.LOW)
"""The fallback order when the chosen priority has no work."""


class PriorityChooser:
    """Picks the priority to fetch next so that, over time, picks follow the weights.

    Smooth weighted round-robin (as nginx balances upstreams): every pick adds each
    priority's weight to its credit, takes the priority with the most credit and
    charges it the total weight. With weights 6,3,1 every ten picks are exactly six
    high, three normal and one low, spread out rather than bunched.
    """

    def __init__(self, weights: Sequence[int]) -> None:
        if len(weights) != len(PRECEDENCE):
            raise ValueError(f"expected weights for high, normal and low, got {list(weights)}")
        if min(weights) < 0 or sum(weights) == 0:
            raise ValueError(f"weights must be >= 0 and not all 0, got {list(weights)}")
        self._weights = dict(zip(PRECEDENCE, weights, strict=True))
        self._credit = dict.fromkeys(PRECEDENCE, 0)
        self._total = sum(weights)

    def next_order(self) -> list[Priority]:
        """The priorities to try for the next fetch: the weighted pick first, then by precedence."""
        for priority in PRECEDENCE:
            self._credit[priority] += self._weights[priority]
        chosen = max(PRECEDENCE, key=lambda priority: self._credit[priority])
        self._credit[chosen] -= self._total
        return [chosen, *(priority for priority in PRECEDENCE if priority is not chosen)]

    def pick(self, with_work: Collection[Priority]) -> Priority | None:
        """The priority to fetch from, given which have work; None when none has."""
        if not with_work:
            return None
        return next(priority for priority in self.next_order() if priority in with_work)
