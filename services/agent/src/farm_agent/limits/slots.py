"""Farm-wide concurrency leases, and optionally a token bucket, as pure logic.

Used per target host (concurrency and rate) and per tenant (concurrency only). At
most `max_concurrency` tasks hold a lease at once; with a `max_rate`, starts are
limited to that many per second by a token bucket that holds one second's worth
(so bursts of up to `max_rate` starts). A lease expires unless its holder renews
it, so the share of an agent that died comes back by itself.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

BUSY_RECHECK_SECONDS = 0.1
"""When every lease is taken, how soon to look again (leases end as tasks finish)."""


@dataclass(frozen=True)
class SlotLimits:
    """The limits on one key (a host, a tenant) shared by the farm."""

    max_concurrency: int
    max_rate: float | None
    """Starts per second; None for no rate limit."""
    lease_seconds: float

    @property
    def burst(self) -> float:
        """Tokens the bucket holds at most: a second's worth, at least one (0: no rate)."""
        return 0.0 if self.max_rate is None else max(1.0, self.max_rate)


@dataclass(frozen=True)
class Slots:
    """One key's leases (lease id → expiry) and token bucket; times are wall-clock seconds."""

    leases: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    tokens: float = 0.0
    refilled_at: float = 0.0

    @classmethod
    def fresh(cls, now: float, limits: SlotLimits) -> "Slots":
        """Slots nobody has used lately: no leases, a full bucket."""
        return cls(tokens=limits.burst, refilled_at=now)

    def current(self, now: float, limits: SlotLimits) -> "Slots":
        """The slots at `now`: expired leases dropped, tokens refilled."""
        tokens = self.tokens
        if limits.max_rate is not None:
            # Clocks of different machines disagree a little: never refill for negative time.
            elapsed = max(0.0, now - self.refilled_at)
            tokens = min(limits.burst, tokens + elapsed * limits.max_rate)
        leases = {lease: expiry for lease, expiry in self.leases.items() if expiry > now}
        return Slots(MappingProxyType(leases), tokens, max(now, self.refilled_at))

    def take(self, lease_id: str, now: float, limits: SlotLimits) -> tuple["Slots", float]:
        """Claims a lease (and a token): the new slots and 0, or unchanged slots and the wait."""
        slots = self.current(now, limits)
        if len(slots.leases) >= limits.max_concurrency:
            soonest = min(slots.leases.values()) - now
            return self, min(soonest, BUSY_RECHECK_SECONDS)
        tokens = slots.tokens
        if limits.max_rate is not None:
            if tokens < 1.0:
                return self, (1.0 - tokens) / limits.max_rate
            tokens -= 1.0
        leases = {**slots.leases, lease_id: now + limits.lease_seconds}
        return replace(slots, leases=MappingProxyType(leases), tokens=tokens), 0.0

    def renew(self, lease_id: str, now: float, limits: SlotLimits) -> "Slots":
        """Extends the lease (or takes it again if it lapsed meanwhile, without a token)."""
        slots = self.current(now, limits)
        leases = {**slots.leases, lease_id: now + limits.lease_seconds}
        return replace(slots, leases=MappingProxyType(leases))

    def give_back(self, lease_id: str, now: float, limits: SlotLimits) -> "Slots":
        """Ends the lease."""
        slots = self.current(now, limits)
        leases = {lease: expiry for lease, expiry in slots.leases.items() if lease != lease_id}
        return replace(slots, leases=MappingProxyType(leases))

    def to_bytes(self) -> bytes:
        """The slots as JSON, as kept in the farm-wide bucket."""
        return json.dumps(
            {"leases": dict(self.leases), "tokens": self.tokens, "refilledAt": self.refilled_at}
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Slots":
        """Reads `to_bytes` output; ValueError if it is not a slots record."""
        try:
            fields = json.loads(data)
            leases = {str(lease): float(expiry) for lease, expiry in fields["leases"].items()}
            return cls(
                MappingProxyType(leases), float(fields["tokens"]), float(fields["refilledAt"])
            )
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a slots record: {data[:80]!r}") from error
