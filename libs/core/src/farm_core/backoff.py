"""Exponential backoff, written once: waits that double from a first delay up to a cap.

Task retries (with jitter on top), restarts of crashed processes and the retry
loops around storage and S3 all wait `doubling_delay`; the retry loops take it as
tenacity's wait strategy, `DoublingWait`.
"""

from dataclasses import dataclass
from typing import Protocol

# 2**62 first delays is beyond any cap; a larger exponent would overflow a float.
_MAX_DOUBLINGS = 62


def doubling_delay(first_seconds: float, max_seconds: float, failures: int) -> float:
    """The wait after the `failures`th failure in a row (from 1): first * 2^(failures-1), capped."""
    doublings = min(max(failures - 1, 0), _MAX_DOUBLINGS)
    return float(min(max_seconds, first_seconds * 2.0**doublings))


class Attempted(Protocol):
    """What a wait strategy reads of a retry loop's state (tenacity's RetryCallState has it)."""

    @property
    def attempt_number(self) -> int:
        """How many attempts have been made, the failed one included."""
        ...


@dataclass(frozen=True)
class DoublingWait:
    """A tenacity wait strategy: after attempt n failed, wait doubling_delay(..., n)."""

    first_seconds: float
    max_seconds: float

    def __call__(self, retry_state: Attempted) -> float:
        """The wait before the next attempt."""
        return doubling_delay(self.first_seconds, self.max_seconds, retry_state.attempt_number)
