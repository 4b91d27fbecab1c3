"""Farm-wide leases on slots kept in a key-value bucket: per target host, per tenant.

A task takes a lease (one of the key's concurrency slots, and a rate token if the
limits have a rate) before it starts, renews it while it runs and gives it back
when it ends. Every change is a compare-and-set on the entry's revision; the
agent keeps the entry it last wrote, so with no other agent on the key a start
costs one round trip. The limits come with each call, so each key may have its own. Asking gives a
Lease, or Busy with how long to wait before asking again.
"""

import asyncio
import logging
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

from farm_agent.kv import Contended, OwnBucket, Versioned, compare_and_set, is_valid_key
from farm_agent.limits.slots import SlotLimits, Slots
from farm_core.periodic import Periodic

log = logging.getLogger(__name__)

CONTENDED_RETRY_SECONDS = 1.0
"""When other agents kept changing the entry, how soon the task is offered again."""
OUTAGE_RETRY_SECONDS = 1.0
"""When the agent's NATS connection is down, how soon the task is offered again."""
# Entries (hosts, tenants) an agent remembers having written; an agent that has
# visited more hosts re-reads the others, which costs one round trip each.
REMEMBERED_ENTRIES = 1024


@dataclass(frozen=True)
class Busy:
    """No slot now (the key is at its limits, others change it, NATS is down): ask again later."""

    retry_after_seconds: float


@dataclass(frozen=True)
class Unreadable:
    """The key's entry could not be read or written: whether a slot is free is unknown.

    Not a wait: nothing says when (or whether) it would end, so the task's attempt
    fails with `cause`. `lasting` when no later try can do better (NATS refuses the key).
    """

    cause: str
    lasting: bool


class Lease:
    """A running task's claim on one of a key's slots, renewed until given back."""

    def __init__(self, limiter: "SlotLimiter", key: str, lease_id: str, limits: SlotLimits) -> None:
        self.key = key
        self.lease_id = lease_id
        self.limits = limits
        self._limiter = limiter
        self._renewing = Periodic(f"lease-{key}", self._renew, limits.lease_seconds / 3)
        self._renewing.start()

    async def release(self) -> None:
        """Gives the slot back (if this fails, the lease lapses on its own)."""
        await self._renewing.cancel()
        await self._limiter.update(self.key, self.lease_id, self.limits, "give_back")

    async def _renew(self) -> None:
        await self._limiter.update(self.key, self.lease_id, self.limits, "renew")


def unreadable(bucket: str, key: str, error: Exception) -> Unreadable:
    """What NATS said when the entry `key` of `bucket` could not be read, and whether that lasts."""
    # An invalid key (a bad token, "*", ">") is refused by the client, and one NATS
    # cannot route (an empty token) gets no responder; neither changes on a retry.
    lasting = isinstance(error, nats.js.errors.InvalidKeyError) or not is_valid_key(key)
    what = str(error) or type(error).__name__
    return Unreadable(
        f"entry {key!r} of NATS KV bucket {bucket} could not be read: {what}", lasting
    )


class SlotLimiter:
    """Hands out leases on the keys of one bucket (hosts, tenants) within given limits."""

    def __init__(
        self,
        kv: KeyValue | OwnBucket,
        what: str,
        remembered: int = REMEMBERED_ENTRIES,
        *,
        bucket: str = "",
        nats_connected: Callable[[], bool] = lambda: True,
    ) -> None:
        # A bucket deleted under the agent is made again (OwnBucket) and the change tried again.
        self._kv = kv if isinstance(kv, OwnBucket) else OwnBucket(kv)
        # A NATS outage (the connection is down, nats-py reconnects) is a wait: it ends
        # when the server is back, or the agent exits if the loss is for good.
        self._nats_connected = nats_connected
        self._what = what
        self._bucket = bucket or f"of the {what} slots"
        # The entries this agent last wrote, to try first; the ones used longest ago go.
        self._known: OrderedDict[str, Versioned[Slots]] = OrderedDict()
        self._remembered = remembered

    def __len__(self) -> int:
        """How many entries the limiter remembers."""
        return len(self._known)

    def _remember(self, key: str, entry: Versioned[Slots]) -> None:
        self._known[key] = entry
        self._known.move_to_end(key)
        while len(self._known) > self._remembered:
            self._known.popitem(last=False)

    async def acquire(
        self, key: str, limits: SlotLimits, patience_seconds: float
    ) -> Lease | Busy | Unreadable:
        """A lease on `key`, waiting up to `patience_seconds` in the agent for one; else Busy.

        Unreadable when the bucket refused or did not answer over a live connection.
        """
        lease_id = uuid.uuid4().hex
        give_up_at = time.monotonic() + patience_seconds
        while True:
            try:
                wait = await self._try_take(key, lease_id, limits)
            except Contended as error:
                log.info("could not take a slot of %s %s: %s", self._what, key, error)
                return Busy(CONTENDED_RETRY_SECONDS)
            except (nats.errors.Error, TimeoutError) as error:
                log.warning("could not take a slot of %s %s: %r", self._what, key, error)
                if not self._nats_connected():
                    return Busy(OUTAGE_RETRY_SECONDS)
                return unreadable(self._bucket, key, error)
            if wait <= 0:
                return Lease(self, key, lease_id, limits)
            # Spread the agents that wait for the same slot.
            wait *= random.uniform(1.0, 1.5)
            if time.monotonic() + wait > give_up_at:
                return Busy(wait)
            await asyncio.sleep(wait)

    async def update(
        self, key: str, lease_id: str, limits: SlotLimits, how: Literal["renew", "give_back"]
    ) -> None:
        """Renews ("renew") or ends ("give_back") a lease; failures are logged, leases lapse."""

        def change(current: Slots | None) -> Slots | None:
            now = time.time()
            if current is None:
                return (
                    None
                    if how == "give_back"
                    else Slots.fresh(now, limits).renew(lease_id, now, limits)
                )
            if how == "give_back":
                return current.give_back(lease_id, now, limits)
            return current.renew(lease_id, now, limits)

        try:
            self._remember(key, await self._change(key, change, self._known.get(key)))
        except (nats.errors.Error, TimeoutError, Contended) as error:
            log.warning(
                "could not %s the lease on %s %s: %s", how.replace("_", " "), self._what, key, error
            )

    async def _try_take(self, key: str, lease_id: str, limits: SlotLimits) -> float:
        """0 once a lease (and a token) is taken; else the wait the slots suggest."""
        wait = 0.0

        def take(current: Slots | None) -> Slots | None:
            nonlocal wait
            now = time.time()
            slots = current if current is not None else Slots.fresh(now, limits)
            after, wait = slots.take(lease_id, now, limits)
            return after if wait <= 0 else None

        known = self._known.get(key)
        stored = await self._change(key, take, known)
        if wait > 0 and known is not None:
            # Refused on what this agent last wrote: others may have freed slots since.
            stored = await self._change(key, take, None)
        self._remember(key, stored)
        return wait

    async def _change(
        self,
        key: str,
        change: Callable[[Slots | None], Slots | None],
        known: Versioned[Slots] | None,
    ) -> Versioned[Slots]:
        """`change` applied to the entry `key` (compare-and-set), starting from `known`."""
        return await self._kv.run(
            lambda kv: compare_and_set(kv, key, change, Slots.from_bytes, Slots.to_bytes, known)
        )
