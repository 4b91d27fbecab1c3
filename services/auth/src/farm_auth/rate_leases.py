"""A key's rate as GCRA, taken a few requests at a time (a lease): the pure rules.

SharedLimits (shared_limits.py) keeps each key's next due time in NATS key-value and
applies these to it in a compare-and-set.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class RateDecision:
    """A request counted against a rate: the key's next due time, or the wait if refused."""

    due: float
    wait_seconds: float


@dataclass(frozen=True)
class RateLease:
    """Requests taken from a key's rate at once: how many, and the key's next due time.

    `granted` 0 means refused; then `wait_seconds` says how long until one is due.
    """

    due: float
    granted: int
    wait_seconds: float


def rate_lease(
    due: float | None, now: float, per_second: float, burst: int, wanted: int
) -> RateLease:
    """GCRA for up to `wanted` requests: as many as keep the due time within `burst` intervals."""
    interval = 1.0 / per_second
    start = max(due or now, now)
    room = int((now + burst * interval - start) / interval + 1e-9)
    granted = min(wanted, room)
    if granted < 1:
        return RateLease(
            due=due or now, granted=0, wait_seconds=start + interval - now - burst * interval
        )
    return RateLease(due=start + granted * interval, granted=granted, wait_seconds=0.0)


def rate_decision(due: float | None, now: float, per_second: float, burst: int) -> RateDecision:
    """GCRA: admit a request if the key's next due time is at most `burst` intervals ahead."""
    lease = rate_lease(due, now, per_second, burst, 1)
    return RateDecision(due=lease.due, wait_seconds=lease.wait_seconds)


@dataclass
class HeldLease:
    """Requests of one key this replica took from the shared entry and has not used yet.

    Unused requests lapse at `until`, so a replica never holds more than a short
    share of a key's rate. `size` is how many the next lease asks for: doubled when a
    lease is used up in time, cut to what was used when one lapses.
    """

    left: int
    until: float
    size: int
    rate: tuple[int, int]

    def take(self, now: float, rate: tuple[int, int]) -> bool:
        """Uses one request of the lease if it holds one, in time, for the same rate."""
        if self.left <= 0 or now >= self.until or rate != self.rate:
            return False
        self.left -= 1
        return True


def next_lease_size(held: HeldLease | None, now: float, cap: int) -> int:
    """How many requests to ask for: more while leases are used up, fewer once one lapses."""
    if held is None:
        return 1
    if held.left > 0 and now >= held.until:
        return max(1, min(cap, held.size - held.left))
    return max(1, min(cap, held.size * 2))


def lease_cap(per_second: int, burst: int, lease_seconds: float) -> int:
    """The most requests one lease may take: `lease_seconds` of the rate, within the burst."""
    return max(1, min(burst, int(per_second * lease_seconds)))
