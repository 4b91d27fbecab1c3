"""Check's in-memory limiter: a token bucket per key.

It lives in one auth replica's memory, as does its counter of failed attempts per
source address (farm_core.failed_attempts). Both answer only while NATS, where the
farm-wide limits count (shared_limits.py), is unreachable: then a key may get up
to N times its rate from N replicas, and an address N times its failed attempts.
"""

import time
from collections import OrderedDict
from collections.abc import Callable

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
