"""Failed attempts per client address: past a limit in a window, the address is blocked.

Held in one process's memory. Auth's edge check counts refused API keys with it per
source address (farm_auth.shared_limits makes it farm-wide over NATS); the web
console counts refused sign-ins with it per browser address.
"""

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


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
