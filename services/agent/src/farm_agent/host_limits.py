"""Farm-wide politeness per target host, kept in the `farm_host_slots` bucket.

A task takes a lease (one of the host's concurrency slots) and a rate token before
it starts, renews the lease while it runs and gives it back when its browsing
ends. Every change is a compare-and-set on the entry's revision; the agent keeps
the entry it last wrote, so with no other agent on the host a start costs one
round trip.
"""

import asyncio
import contextlib
import logging
import random
import time
import uuid
from typing import Literal

import nats.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from farm_agent.buckets import Contended, Versioned, compare_and_set, host_slots_bucket
from farm_agent.host_slots import HostLimits, HostSlots
from farm_agent.settings import AgentSettings

log = logging.getLogger(__name__)

UNREACHABLE_RETRY_SECONDS = 1.0
"""When the bucket cannot be reached, how soon the task is offered again."""


class HostLease:
    """A running task's claim on one of its host's slots, renewed until given back."""

    def __init__(self, limiter: "HostLimiter", host: str, lease_id: str) -> None:
        self.host = host
        self.lease_id = lease_id
        self._limiter = limiter
        self._renewing = asyncio.create_task(self._renew(), name=f"lease-{host}")

    async def release(self) -> None:
        """Gives the slot back (if this fails, the lease lapses on its own)."""
        self._renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._renewing
        await self._limiter.update(self.host, self.lease_id, "give_back")

    async def _renew(self) -> None:
        interval = self._limiter.limits.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            await self._limiter.update(self.host, self.lease_id, "renew")


class HostLimiter:
    """Hands out leases on target hosts within the farm-wide concurrency and rate limits."""

    @classmethod
    async def open(cls, js: JetStreamContext, settings: AgentSettings) -> "HostLimiter":
        """The limiter on the farm's bucket, with the per-host limits of the settings."""
        limits = HostLimits(
            settings.host_max_concurrency, settings.host_max_rate, settings.host_lease_seconds
        )
        return cls(await host_slots_bucket(js), limits)

    def __init__(self, kv: KeyValue, limits: HostLimits) -> None:
        self._kv = kv
        self.limits = limits
        self._known: dict[str, Versioned[HostSlots]] = {}

    async def acquire(self, host: str, patience_seconds: float) -> HostLease | float:
        """A lease on `host`, waiting up to `patience_seconds` in the agent for one.

        Without a lease by then: how long to wait before asking again.
        """
        lease_id = uuid.uuid4().hex
        give_up_at = time.monotonic() + patience_seconds
        while True:
            try:
                wait = await self._try_take(host, lease_id)
            except (nats.errors.Error, TimeoutError, Contended) as error:
                log.warning("could not take a slot on %s: %s", host, error)
                return UNREACHABLE_RETRY_SECONDS
            if wait <= 0:
                return HostLease(self, host, lease_id)
            # Spread the agents that wait for the same slot.
            wait *= random.uniform(1.0, 1.5)
            if time.monotonic() + wait > give_up_at:
                return wait
            await asyncio.sleep(wait)

    async def update(self, host: str, lease_id: str, how: Literal["renew", "give_back"]) -> None:
        """Renews ("renew") or ends ("give_back") a lease; failures are logged, leases lapse."""

        def change(current: HostSlots | None) -> HostSlots | None:
            if current is None:
                return (
                    None
                    if how == "give_back"
                    else self._fresh().renew(lease_id, time.time(), self.limits)
                )
            if how == "give_back":
                return current.give_back(lease_id, time.time(), self.limits)
            return current.renew(lease_id, time.time(), self.limits)

        try:
            known = self._known.get(host)
            self._known[host] = await compare_and_set(
                self._kv, host, change, HostSlots.from_bytes, HostSlots.to_bytes, known
            )
        except (nats.errors.Error, TimeoutError, Contended) as error:
            log.warning("could not %s the lease on %s: %s", how.replace("_", " "), host, error)

    async def _try_take(self, host: str, lease_id: str) -> float:
        """0 once a lease and a token are taken; else the wait the slots suggest."""
        wait = 0.0

        def take(current: HostSlots | None) -> HostSlots | None:
            nonlocal wait
            slots = current if current is not None else self._fresh()
            after, wait = slots.take(lease_id, time.time(), self.limits)
            return after if wait <= 0 else None

        known = self._known.get(host)
        stored = await compare_and_set(
            self._kv, host, take, HostSlots.from_bytes, HostSlots.to_bytes, known
        )
        if wait > 0 and known is not None:
            # Refused on what this agent last wrote: others may have freed slots since.
            stored = await compare_and_set(
                self._kv, host, take, HostSlots.from_bytes, HostSlots.to_bytes
            )
        self._known[host] = stored
        return wait

    def _fresh(self) -> HostSlots:
        return HostSlots.fresh(time.time(), self.limits)
