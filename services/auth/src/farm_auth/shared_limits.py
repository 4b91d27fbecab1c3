"""Check's farm-wide limits: every auth replica counts in the same NATS key-value entries.

`farm_rate_limits` holds each API key's rate as the time its next request is due
(GCRA: a token bucket written as one number), `farm_failed_auth` each source
address's refused keys and until when it is blocked. Each update is a
compare-and-set, so N replicas give a key its rate once, not N times. A replica
takes a key's requests from the entry a few at a time (a lease, at most
`lease_seconds` of the key's rate, used up or dropped within that time), so a busy
key costs one round trip per lease rather than one per request. Every
replica watches `farm_failed_auth`, so asking whether an address is blocked costs
no round trip. While NATS is away or stalled (the check's NatsPause), Check
falls back to the replica's own in-memory limiters (ratelimit.py,
farm_core.failed_attempts): limits stay in force, per replica.
"""

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from farm_auth.rate_leases import HeldLease, RateLease, lease_cap, next_lease_size, rate_lease
from farm_auth.ratelimit import KeyRateLimiter
from farm_core.cancel import cancel_and_wait
from farm_core.failed_attempts import FailedAuthLimiter
from farm_core.kv import Contended, Versioned, compare_and_set, open_bucket
from farm_core.nats_access import NatsAccess
from farm_core.nats_link import NatsLink, NatsPause, NatsPaused

log = logging.getLogger(__name__)

RATES_BUCKET = "farm_rate_limits"
FAILED_AUTH_BUCKET = "farm_failed_auth"
# A rate entry not written for a day is dropped: by then every bucket is full again
# unless burst / per_second is over a day, which MAX_RATE's bounds allow but no one sets.
RATE_TTL_SECONDS = 24 * 3600.0

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class FailureCount:
    """One address's refused keys in its current window, and until when it is blocked."""

    window_start: float
    count: int
    blocked_until: float = 0.0

    def to_bytes(self) -> bytes:
        """The entry's value."""
        return json.dumps([self.window_start, self.count, self.blocked_until]).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "FailureCount":
        """The entry `to_bytes` wrote; ValueError if it is not one."""
        try:
            start, count, blocked = json.loads(data)
            return cls(float(start), int(count), float(blocked))
        except (TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"not a failure count: {data!r}") from error


@dataclass(frozen=True)
class FailureRule:
    """Past `limit` refused keys in `window_seconds`, an address is blocked `block_seconds`."""

    limit: int
    window_seconds: float
    block_seconds: float


def after_failure(current: FailureCount | None, now: float, rule: FailureRule) -> FailureCount:
    """`current` with one more refused key counted, blocked once past the rule's limit."""
    if current is None or now - current.window_start >= rule.window_seconds:
        current = FailureCount(window_start=now, count=0, blocked_until=current_block(current))
    count = current.count + 1
    blocked = now + rule.block_seconds if count > rule.limit else current.blocked_until
    return FailureCount(current.window_start, count, blocked)


def current_block(current: FailureCount | None) -> float:
    """Until when `current` blocks its address (0.0 when it does not)."""
    return current.blocked_until if current is not None else 0.0


def entry_key(name: str) -> str:
    """A key-value key for a key id or an address (IPv6's colons made safe)."""
    return _KEY_UNSAFE.sub("_", name) or "_"


class SharedLimits:
    """Per-key rates and per-address failed keys, counted farm-wide in NATS key-value."""

    def __init__(
        self,
        nats: NatsAccess,
        local_rates: KeyRateLimiter,
        local_failures: FailedAuthLimiter,
        failure_rule: FailureRule,
        pause: NatsPause,
        lease_seconds: float = 0.0,
        clock: Callable[[], float] = time.time,
        replicas: int = 1,
    ) -> None:
        # A key's calls queue behind one another on its lock: without the pause, each
        # would wait for a stalled nats-server in turn, long past the edge's wait.
        self._link = NatsLink(nats, "farm-auth-limits", pause=pause)
        self._replicas = replicas
        self._local_rates = local_rates
        self._local_failures = local_failures
        self._rule = failure_rule
        self._clock = clock
        self._lease_seconds = lease_seconds
        self._leases: dict[str, HeldLease] = {}
        self._buckets: tuple[KeyValue, KeyValue] | None = None
        self._opening: asyncio.Task[None] | None = None
        self._watching: asyncio.Task[None] | None = None
        self._watcher: KeyValue.KeyWatcher | None = None
        self._rebinding: asyncio.Task[None] | None = None
        # The revision of each key's rate entry this replica wrote last: tried first.
        self._known_rates: dict[str, Versioned[float]] = {}
        self._key_locks: dict[str, asyncio.Lock] = {}
        self._blocked_until: dict[str, float] = {}

    @property
    def shared(self) -> bool:
        """Whether the limits count farm-wide now (else in this replica's memory)."""
        return self._buckets is not None and self._watching is not None and self._link.is_connected

    def _counting_locally(self) -> bool:
        """Whether NATS is not to be asked now: not bound, not connected, or just failed."""
        return self._buckets is None or self._link.paused

    def start(self) -> None:
        """Connects in the background; until connected, the local limiters answer."""
        self._opening = asyncio.create_task(self._open(), name="auth-shared-limits")

    async def close(self) -> None:
        """Stops watching and closes the connection."""
        for task in (self._opening, self._watching, self._rebinding):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._link.close()

    async def take(self, key_id: str, per_second: int, burst: int) -> float:
        """Counts one request of `key_id`: 0.0 if allowed, else the seconds to wait."""
        if self._buckets is None or self._counting_locally():
            return self._local_rates.take(key_id, per_second, burst)
        rates, _ = self._buckets
        key = entry_key(key_id)
        held = self._leases.get(key)
        if held is not None and held.take(self._clock(), (per_second, burst)):
            return 0.0
        # Requests of one key in one replica queue here instead of racing each other's
        # compare-and-set; replicas race only each other.
        # Both maps hold one small entry per valid key that called: bounded by the keys.
        lock = self._key_locks.get(key)
        if lock is None:
            # Made once per key: setdefault would build (and drop) a Lock on every call.
            lock = self._key_locks[key] = asyncio.Lock()
        try:
            async with lock:
                # Another request of the key may have leased while this one queued.
                held = self._leases.get(key)
                if held is not None and held.take(self._clock(), (per_second, burst)):
                    return 0.0
                # The call ahead of this one may have found NATS not answering.
                if self._counting_locally():
                    return self._local_rates.take(key_id, per_second, burst)
                return await self._take_shared(rates, key, per_second, burst)
        except (nats.errors.Error, TimeoutError, Contended, NatsPaused) as error:
            log.warning(
                "shared rate of %s unavailable, counting locally: %s",
                key_id,
                str(error) or type(error).__name__,
            )
            self._rebind_soon(error)
            return self._local_rates.take(key_id, per_second, burst)

    async def _take_shared(self, rates: KeyValue, key: str, per_second: int, burst: int) -> float:
        now = self._clock()
        cap = lease_cap(per_second, burst, self._lease_seconds)
        wanted = next_lease_size(self._leases.get(key), now, cap)
        lease = RateLease(due=now, granted=0, wait_seconds=0.0)

        def count(due: float | None) -> float | None:
            nonlocal lease
            lease = rate_lease(due, self._clock(), per_second, burst, wanted)
            return lease.due if lease.granted else None

        written = await self._link.call(
            lambda: compare_and_set(
                rates,
                key,
                count,
                lambda data: float(data.decode()),
                lambda due: repr(due).encode(),
                known=self._known_rates.get(key),
            )
        )
        self._known_rates[key] = written
        if not lease.granted:
            return lease.wait_seconds
        # One of the granted requests is this one; the rest wait here for the next ones.
        self._leases[key] = HeldLease(
            left=lease.granted - 1,
            until=self._clock() + self._lease_seconds,
            size=wanted,
            rate=(per_second, burst),
        )
        return 0.0

    def blocked_for(self, address: str) -> float:
        """Seconds `address` stays blocked, by any replica's count; 0.0 when it is not."""
        shared = self._blocked_until.get(entry_key(address), 0.0) - self._clock()
        return max(shared, self._local_failures.blocked_for(address), 0.0)

    async def record_failure(self, address: str) -> None:
        """Counts one refused key from `address`, in every replica's count."""
        if self._rule.limit <= 0:
            return
        if self._buckets is None or self._counting_locally():
            self._local_failures.record_failure(address)
            return
        _, failures = self._buckets
        key = entry_key(address)
        try:
            written = await self._link.call(
                lambda: compare_and_set(
                    failures,
                    key,
                    lambda current: after_failure(current, self._clock(), self._rule),
                    FailureCount.from_bytes,
                    FailureCount.to_bytes,
                )
            )
        except (nats.errors.Error, TimeoutError, Contended, NatsPaused) as error:
            log.warning(
                "shared failures of %s unavailable, counting locally: %s",
                address,
                str(error) or type(error).__name__,
            )
            self._rebind_soon(error)
            self._local_failures.record_failure(address)
            return
        if written.value is not None:
            # Seen at once here; the other replicas see it through their watch.
            self._note_block(key, written.value)

    def _note_block(self, key: str, count: FailureCount) -> None:
        if count.blocked_until > self._clock():
            self._blocked_until[key] = count.blocked_until
        else:
            self._blocked_until.pop(key, None)

    async def _open(self) -> None:
        self._buckets = await self._link.open(self._prepare)
        self._watch_blocks(await self._buckets[1].watchall())

    def _watch_blocks(self, watcher: KeyValue.KeyWatcher) -> None:
        self._watcher = watcher
        self._watching = asyncio.create_task(self._watch(watcher), name="auth-failed-auth-watch")

    def _rebind_soon(self, error: Exception) -> None:
        """After a failed count (not a lost race), binds the buckets again, once at a time."""
        if isinstance(error, Contended | NatsPaused) or self._buckets is None:
            return
        if self._rebinding is None or self._rebinding.done():
            self._rebinding = asyncio.create_task(self._rebind(), name="auth-shared-limits-rebind")

    async def _rebind(self) -> None:
        """Binds the buckets and the watch anew: a restarted nats-server lost them (memory)."""
        js = self._link.jetstream()
        if js is None:
            return
        try:
            buckets = await self._prepare(js)
            watcher = await buckets[1].watchall()
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("shared limits: the buckets cannot be bound yet: %s", error)
            return
        old_watcher, old_watching = self._watcher, self._watching
        self._buckets = buckets
        self._watch_blocks(watcher)
        if old_watching is not None:
            await cancel_and_wait(old_watching, "the old failed-auth watch")
        if old_watcher is not None:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await old_watcher.stop()  # type: ignore[no-untyped-call]  # untyped in nats-py

    async def _prepare(self, js: JetStreamContext) -> tuple[KeyValue, KeyValue]:
        return (
            await _memory_bucket(js, RATES_BUCKET, RATE_TTL_SECONDS, self._replicas),
            await _memory_bucket(
                js,
                FAILED_AUTH_BUCKET,
                self._rule.window_seconds + self._rule.block_seconds,
                self._replicas,
            ),
        )

    async def _watch(self, watcher: KeyValue.KeyWatcher) -> None:
        """Mirrors every replica's blocks of addresses, so blocked_for stays local."""
        async for entry in watcher:
            if entry is None:
                continue
            if entry.operation is not None or not entry.value:
                self._blocked_until.pop(entry.key, None)
                continue
            try:
                self._note_block(entry.key, FailureCount.from_bytes(entry.value))
            except ValueError as error:
                log.warning("failed-auth entry %s unreadable: %s", entry.key, error)


async def _memory_bucket(js: JetStreamContext, bucket: str, ttl: float, replicas: int) -> KeyValue:
    """The memory-backed bucket `bucket` (entries dropped after `ttl` s), made on first use."""
    return await open_bucket(
        js,
        KeyValueConfig(
            bucket=bucket, ttl=ttl, storage=StorageType.MEMORY, direct=True, replicas=replicas
        ),
    )
