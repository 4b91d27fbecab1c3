"""Turns an API key secret into the identity it stands for, with a short-lived cache."""

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
class _Remembered:
    record: KeyRecord
    fresh_until: float


class KeyCache:
    """Valid keys looked up lately, by secret hash; each entry trusted for `seconds` at most.

    Bounded: past `max_entries` the entry remembered longest ago is dropped.
    """

    def __init__(
        self, seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._seconds = seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, _Remembered] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, secret_hash: str) -> KeyRecord | None:
        """The key remembered for `secret_hash` if it is still fresh, else None."""
        remembered = self._entries.get(secret_hash)
        if remembered is None:
            return None
        if remembered.fresh_until <= self._clock():
            del self._entries[secret_hash]
            return None
        return remembered.record

    def put(self, record: KeyRecord, secret_hash: str | None = None) -> None:
        """Remembers `record` under `secret_hash` (its current one by default) for a while."""
        if self._seconds <= 0 or self._max_entries <= 0:
            return
        secret_hash = secret_hash or record.secret_hash
        self._entries.pop(secret_hash, None)
        self._entries[secret_hash] = _Remembered(record, self._clock() + self._seconds)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, secret_hash: str) -> None:
        """Drops what is remembered for `secret_hash`."""
        self._entries.pop(secret_hash, None)


@dataclass(frozen=True)
class Verified:
    """A valid key: who it is (with its tenant's quotas) and its rate limit in force."""

    identity: Identity
    rate_limit: RateLimit


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

    async def verify(self, secret: str) -> Verified:
        """The identity and rate limit `secret` stands for; raises KeyRefused saying why not."""
        secret_hash = self._hasher.hash(secret)
        cached = self._cache.get(secret_hash)
        record = cached or await self._look_up(secret, secret_hash)
        refused = refusal(record, utcnow(), secret_hash)
        if refused is not None:
            self._cache.forget(secret_hash)
            raise refused
        if cached is None:
            self._cache.put(record, secret_hash)
        quotas = self._defaults.quotas(record.tenant_quotas)
        return Verified(
            identity=record.identity(self._bootstrap_tenant, quotas),
            rate_limit=self._defaults.rate(record.rate_setting),
        )

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
        self._cache.forget(record.secret_hash)
        if record.previous_secret_hash:
            self._cache.forget(record.previous_secret_hash)
