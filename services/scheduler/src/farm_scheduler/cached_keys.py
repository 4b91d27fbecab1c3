"""Which of a tenant's cache keys may have a result: lets a create skip a lookup that cannot hit.

Most creates ask the result cache for a spec that never succeeded before (a new
URL, a new page): their indexed query finds nothing. Each replica keeps a Bloom
filter of the (tenant, cache key) pairs that have a succeeded task which may
serve the cache, loaded from SQL at start and every `reload_seconds`, and kept
up to date by every replica's announcement of a new success on the core NATS
subject `scheduler.cached`. The replica that writes the success announces it
before committing it, so nobody can read the success (a GetTask, a watcher's poll)
before this replica's filter has the pair, and the others hear it before the
change's own announcement wakes their watchers. An announced success whose commit
then fails only costs a lookup. A create whose pair is
not in the filter is a miss without a query; one that is (or a false positive)
is looked up as before, so the filter can only skip lookups that would miss.

When the filter cannot be trusted (not loaded yet, NATS not connected, or
reconnected since the filter was loaded, so announcements may have been lost)
every create is looked up, and the filter is reloaded.
"""

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from farm.tasks.v1 import tasks_pb2
from farm_scheduler.field_checks import MAX_CACHE_TTL_SECONDS
from farm_scheduler.models import HAS_CACHE_KEY
from farm_scheduler.records import TaskRecord
from farm_scheduler.task_rows import STATUS_SUCCEEDED, tasks

log = logging.getLogger(__name__)

CACHED_SUBJECT = "scheduler.cached"
"""Core NATS subject on which a replica announces a task's success that may serve the cache."""
RETRY_SECONDS = 1.0
"""How soon a filter that could not be loaded, or was dropped, is loaded again."""
KEY_LENGTH = 64
"""A cache key is a hex SHA-256 (result_cache.cache_key)."""

lookups_skipped = Counter(
    "farm_task_cache_lookups_skipped_total",
    "Creates counted as result cache misses without a query: their key surely had no result.",
)


def new_cached_result(before: TaskRecord, after: TaskRecord) -> bool:
    """Whether a change makes the task a new result that may serve its tenant's cache."""
    succeeded = tasks_pb2.TASK_STATUS_SUCCEEDED
    return (
        bool(after.cache_key)
        and not after.cached
        and after.state.status == succeeded
        and before.state.status != succeeded
    )


class KeyFilter:
    """A Bloom filter of (tenant, cache key) pairs: no false negatives, few false positives."""

    def __init__(self, bits: int = 1 << 23, hashes: int = 4) -> None:
        self._bits = bits
        self._hashes = hashes
        self._array = bytearray(bits // 8)

    def _positions(self, tenant: str, key: str) -> list[int]:
        digest = hashlib.blake2b(f"{tenant}\0{key}".encode(), digest_size=4 * self._hashes).digest()
        return [
            int.from_bytes(digest[4 * i : 4 * i + 4], "little") % self._bits
            for i in range(self._hashes)
        ]

    def add(self, tenant: str, key: str) -> None:
        """Notes that the pair may have a result."""
        for position in self._positions(tenant, key):
            self._array[position >> 3] |= 1 << (position & 7)

    def __contains__(self, pair: tuple[str, str]) -> bool:
        return all(
            self._array[position >> 3] & (1 << (position & 7))
            for position in self._positions(*pair)
        )


class CachedKeys:
    """The replica's filter of cache keys with a result, and its upkeep over SQL and NATS."""

    def __init__(self) -> None:
        self._reload_seconds = 0.0
        self._filter: KeyFilter | None = None
        self._building: KeyFilter | None = None
        self._nc: Client | None = None
        self._engine: AsyncEngine | None = None
        self._loaded_reconnects = -1
        self._subscription: Subscription | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._reload_now = asyncio.Event()

    def may_hit(self, tenant: str, key: str) -> bool:
        """False only when the tenant's cache surely has no result for `key`."""
        if self._filter is None or self._nc is None:
            return True
        if not self._nc.is_connected or self._nc.stats["reconnects"] != self._loaded_reconnects:
            # Announcements may have been missed meanwhile: trust SQL until reloaded.
            self._filter = None
            self._reload_now.set()
            return True
        return (tenant, key) in self._filter

    def add(self, tenant: str, key: str) -> None:
        """Notes in this replica that the pair has a result (and in a filter being loaded)."""
        for keys in (self._filter, self._building):
            if keys is not None:
                keys.add(tenant, key)

    async def announce(self, tenant: str, key: str) -> None:
        """Notes a new result here and tells the other replicas."""
        self.add(tenant, key)
        if self._nc is None:
            return
        try:
            await self._nc.publish(CACHED_SUBJECT, (key + tenant).encode())
        except nats.errors.Error as error:
            # The other replicas' filters catch up at their next reload.
            log.warning("announcing a cached result failed: %s", error)

    async def start(self, nc: Client, engine: AsyncEngine, reload_seconds: float) -> None:
        """Hears the other replicas, loads the filter and reloads it every `reload_seconds`."""
        self._nc, self._engine, self._reload_seconds = nc, engine, reload_seconds
        self._subscription = await nc.subscribe(
            CACHED_SUBJECT, cb=self._heard, pending_msgs_limit=1_000_000
        )
        await self._load()
        self._keeper = asyncio.create_task(self._keep(), name="cached-keys")

    async def stop(self) -> None:
        """Stops reloading and hearing; every create is looked up from then on."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(nats.errors.Error):
                await subscription.unsubscribe()
        self._filter = None

    async def _heard(self, message: Msg) -> None:
        data = message.data.decode()
        self.add(data[KEY_LENGTH:], data[:KEY_LENGTH])

    async def _keep(self) -> None:
        while True:
            if self._filter is None:
                # Not loaded (or no longer to be trusted): try again soon.
                await asyncio.sleep(RETRY_SECONDS)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._reload_now.wait(), self._reload_seconds)
            self._reload_now.clear()
            try:
                await self._load()
            except Exception:
                # Until a load succeeds every create is looked up: slower, never wrong.
                log.exception("loading the result cache's keys failed")

    async def _load(self) -> None:
        """Builds a fresh filter from SQL; pairs heard meanwhile go into it too."""
        if self._nc is None or self._engine is None:
            return
        reconnects = self._nc.stats["reconnects"]
        fresh = self._building = KeyFilter()
        try:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=MAX_CACHE_TTL_SECONDS)
            query = select(tasks.c.tenant, tasks.c.cache_key).where(
                HAS_CACHE_KEY, tasks.c.status == STATUS_SUCCEEDED, tasks.c.finish_time >= since
            )
            async with self._engine.connect() as connection:
                for tenant, key in await connection.execute(query):
                    fresh.add(tenant, key)
        finally:
            self._building = None
        if self._nc.is_connected and self._nc.stats["reconnects"] == reconnects:
            self._filter, self._loaded_reconnects = fresh, reconnects
