"""The target hosts' circuit breakers as the farm keeps them: the `farm_breakers` bucket.

The agents write each host's breaker (farm_agent.limits.circuit.Circuit.to_bytes:
JSON with `state`, `failures`, `openedAt`); the scheduler reads them for the fleet
status and the breaker gauges. This module is that contract's one reading.
"""

import json
from dataclasses import dataclass
from enum import StrEnum

BREAKERS_BUCKET = "farm_breakers"


class BreakerState(StrEnum):
    """A breaker's state as the bucket spells it."""

    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


@dataclass(frozen=True)
class BreakerEntry:
    """One host's breaker: its state, the failures that led to it, when it last opened."""

    host: str
    state: BreakerState
    failures: int
    # Wall-clock seconds; 0 for a breaker that never opened.
    opened_at: float


def read_breaker(host: str, data: bytes) -> BreakerEntry:
    """The breaker of `host` from its bucket entry; ValueError if it is not one."""
    try:
        fields = json.loads(data)
        return BreakerEntry(
            host=host,
            state=BreakerState(str(fields["state"])),
            failures=int(fields["failures"]),
            opened_at=float(fields["openedAt"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"not a breaker: {error}") from error
