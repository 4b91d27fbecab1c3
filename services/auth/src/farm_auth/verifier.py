"""Turns an API key secret into the identity it stands for, with a short-lived cache."""

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from farm_auth.keys import UNKNOWN_KEY, KeyRecord, KeyRefused, SecretHasher, refusal
from farm_auth.limits import LimitDefaults, RateLimit
from farm_auth.store import KeyStore
from farm_core.db import utcnow
from farm_core.identity import Identity


@dataclass(frozen=True)
class Verified:
    """A valid key: who it is (with its tenant's quotas) and its rate limit in force."""

    identity: Identity
    rate_limit: RateLimit


def usable_until(record: KeyRecord, secret_hash: str) -> float:
    """Until when (a Unix time) the secret hashing to `secret_hash` works, if nothing changes."""
    ending = record.validity(secret_hash).ending()
    return math.inf if ending is None else ending[0]


@dataclass(frozen=True)
class _Remembered:
    verified: Verified
    fresh_until: float
    usable_until: float


class KeyCache:
    """Keys verified lately, by their secret; each trusted for `seconds` at most.

    A hit answers without hashing the secret or building the identity again. It
    ends early when the key expires (or its rotated secret's grace ends), and
    `forget` drops a key at once. Bounded: past `max_entries` the entry
    remembered longest ago is dropped.
    """

    def __init__(
        self,
        seconds: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._seconds = seconds
        self._max_entries = max_entries
        self._clock = clock
        self._wall_clock = wall_clock
        self._entries: OrderedDict[str, _Remembered] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, secret: str) -> Verified | None:
        """What `secret` was verified as, if that is still fresh and usable, else None."""
        remembered = self._entries.get(secret)
        if remembered is None:
            return None
        if remembered.fresh_until <= self._clock() or remembered.usable_until <= self._wall_clock():
            del self._entries[secret]
            return None
        return remembered.verified

    def put(self, secret: str, verified: Verified, usable_until: float = math.inf) -> None:
        """Remembers that `secret` is `verified`, for a while and no later than `usable_until`."""
        if self._seconds <= 0 or self._max_entries <= 0:
            return
        self._entries.pop(secret, None)
        self._entries[secret] = _Remembered(verified, self._clock() + self._seconds, usable_until)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, key_id: str) -> None:
        """Drops what is remembered for key `key_id`, under any of its secrets."""
        stale = [s for s, kept in self._entries.items() if kept.verified.identity.key_id == key_id]
        for secret in stale:
            del self._entries[secret]


class KeyVerifier:
    """Checks API key secrets against the store: unknown, revoked, expired, rotated, or whose."""

    def __init__(
        self,
        store: KeyStore,
        hasher: SecretHasher,
        cache: KeyCache,
        bootstrap_tenant: str,
        defaults: LimitDefaults,
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._cache = cache
        self._bootstrap_tenant = bootstrap_tenant
        self._defaults = defaults
        # Lookups in flight, by secret: the requests that miss the cache together share one.
        self._looking_up: dict[str, asyncio.Future[Verified]] = {}
        # Counts forgets, so a lookup that a forget overtook leaves nothing in the cache.
        self._forgets = 0

    async def verify(self, secret: str) -> Verified:
        """The identity and rate limit `secret` stands for; raises KeyRefused saying why not."""
        cached = self._cache.get(secret)
        if cached is not None:
            return cached
        # When a busy key's entry lapses, every request in flight misses at once.
        looking = self._looking_up.get(secret)
        if looking is None:
            looking = asyncio.ensure_future(self._verify_in_store(secret))
            self._looking_up[secret] = looking
            looking.add_done_callback(lambda _: self._looking_up.pop(secret, None))
        # Shielded: a caller that gives up does not cancel the others' lookup.
        return await asyncio.shield(looking)

    async def _verify_in_store(self, secret: str) -> Verified:
        forgets = self._forgets
        secret_hash = self._hasher.hash(secret)
        record = await self._look_up(secret, secret_hash)
        refused = refusal(record, utcnow(), secret_hash)
        if refused is not None:
            raise refused
        quotas = self._defaults.quotas(record.tenant_quotas)
        verified = Verified(
            identity=record.identity(self._bootstrap_tenant, quotas, secret_hash),
            rate_limit=self._defaults.rate(record.rate_setting),
        )
        if forgets == self._forgets:
            self._cache.put(secret, verified, usable_until(record, secret_hash))
        return verified

    async def _look_up(self, secret: str, secret_hash: str) -> KeyRecord:
        record = await self._store.find_by_hash(secret_hash)
        if record is None:
            raise KeyRefused("unknown", UNKNOWN_KEY)
        hashes = (record.secret_hash, record.previous_secret_hash or "")
        if not any(self._hasher.matches(secret, known) for known in hashes):
            raise KeyRefused("unknown", UNKNOWN_KEY)
        return record

    def forget(self, record: KeyRecord) -> None:
        """Stops trusting what this process remembers of `record` (revoked, rotated, changed)."""
        self._forgets += 1
        self._cache.forget(record.id)
