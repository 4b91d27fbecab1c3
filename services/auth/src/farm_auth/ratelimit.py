"""Check's in-memory limiters: a token bucket per key, and failed attempts per source address.

Both live in one auth replica's memory. They answer only while NATS, where the
farm-wide limits count (shared_limits.py), is unreachable: then a key may get up
to N times its rate from N replicas, and an address N times its failed attempts.
"""

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


class TokenBucket:
    """Holds up to `burst` tokens, refilled at `per_second`; each request takes one."""

    def __init__(self, per_second: float, burst: int, now: float) -> None:
        self.per_second = per_second
        self.burst = burst
        self._tokens = float(burst)
        self._updated = now

    def take(self, now: float) -> float:
        """Takes a token: 0.0 when there was one, else the seconds until there is one."""
        elapsed = max(now - self._updated, 0.0)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.per_second)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.per_second

    def reshape(self, per_second: float, burst: int) -> None:
        """Applies a changed limit, keeping the tokens held (at most the new burst)."""
        self.per_second = per_second
        self.burst = burst
        self._tokens = min(self._tokens, float(burst))


class KeyRateLimiter:
    """One token bucket per API key id, at most `max_keys` of them (least recent dropped)."""

    def __init__(self, max_keys: int, clock: Clock = time.monotonic) -> None:
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key_id: str, per_second: int, burst: int) -> float:
        """Counts one request of `key_id`: 0.0 if allowed, else the seconds to wait."""
        now = self._clock()
        bucket = self._buckets.pop(key_id, None)
        if bucket is None:
            bucket = TokenBucket(per_second, burst, now)
        elif (bucket.per_second, bucket.burst) != (per_second, burst):
            bucket.reshape(per_second, burst)
        self._buckets[key_id] = bucket
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return bucket.take(now)


@dataclass
class _Failures:
    window_start: float
    count: int = 0
    blocked_until: float = 0.0


class FailedAuthLimiter:
    """Counts refused keys per source address; past `limit` in `window_seconds`, blocks it.

    A blocked address gets 429 for `block_seconds`, even with a valid key, so a
    guesser cannot tell a right guess from a wrong one while blocked.
    """

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        block_seconds: float,
        max_addresses: int,
        clock: Clock = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window_seconds = window_seconds
        self._block_seconds = block_seconds
        self._max_addresses = max_addresses
        self._clock = clock
        self._addresses: OrderedDict[str, _Failures] = OrderedDict()

    def blocked_for(self, address: str) -> float:
        """Seconds `address` stays blocked; 0.0 when it is not."""
        failures = self._addresses.get(address)
        if failures is None:
            return 0.0
        return max(failures.blocked_until - self._clock(), 0.0)

    def record_failure(self, address: str) -> None:
        """Counts one refused key from `address`, blocking it once over the limit."""
        if self._limit <= 0:
            return
        now = self._clock()
        failures = self._addresses.pop(address, None)
        if failures is None:
            failures = _Failures(window_start=now)
        elif now - failures.window_start >= self._window_seconds:
            failures.window_start, failures.count = now, 0
        failures.count += 1
        if failures.count > self._limit:
            failures.blocked_until = now + self._block_seconds
        self._addresses[address] = failures
        while len(self._addresses) > self._max_addresses:
            self._addresses.popitem(last=False)


def retry_after_header(seconds: float) -> str:
    """The Retry-After value for a wait of `seconds`: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
