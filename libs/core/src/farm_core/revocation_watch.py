"""Keeps a process's RevokedCredentials in step with the bucket auth publishes revocations to.

BucketWatch, the way of following a bucket, is shared with the agents' watch of
revoked API keys (farm_core.key_revocations).
"""

import asyncio
import contextlib
import logging

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from farm_core.cancel import cancel_and_wait
from farm_core.kv import open_bucket
from farm_core.nats_access import NatsAccess
from farm_core.nats_link import NatsLink
from farm_core.revocations import REVOKED_CREDENTIALS_BUCKET, Revocation, RevokedCredentials

log = logging.getLogger(__name__)

BUCKET_LOOKUPS = 10
BUCKET_LOOKUP_SECONDS = 0.2
"""A watch that finds no bucket looks again this often, this many times, before making it."""


async def revocations_bucket(
    js: JetStreamContext, replicas: int = 1, create: bool = True
) -> KeyValue:
    """The bucket of revoked credentials; made on first use when `create` (auth, open NATS).

    On disk, so a restarted nats-server still holds them. Its entries by id carry a
    TTL of the credential's remaining life; those by subject have none.
    """
    if not create:
        return await js.key_value(REVOKED_CREDENTIALS_BUCKET)
    return await open_bucket(
        js,
        KeyValueConfig(
            bucket=REVOKED_CREDENTIALS_BUCKET, storage=StorageType.FILE, replicas=replicas
        ),
    )


class BucketWatch:
    """Follows one key-value bucket: a replay of every entry, then each change, until close().

    A storage replica or an agent may only read a bucket under NATS users; on an
    open NATS the first process to need it makes it, so a service started before
    auth still loads. A watch that finds no bucket waits a moment for auth to make it
    first: a create its NATS user may not make goes unanswered, which held the watch
    (and the service's calls, refused until revocations are loaded) for a request
    timeout. Subclasses say which bucket (`_lookup`) and what an entry means (`_follow`).
    """

    def __init__(self, access: NatsAccess, name: str) -> None:
        self._reconnected = asyncio.Event()
        self._link = NatsLink(access, name, self._reconnected.set)
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Connects in the background and keeps watching until close()."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self._name}-watch")

    async def close(self) -> None:
        """Stops watching and closes the connection."""
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task, f"the {self._name} watch")
        await self._link.close()

    async def _lookup(self, js: JetStreamContext, create: bool) -> KeyValue:
        """The bucket; made when `create` and it is not there."""
        raise NotImplementedError

    async def _follow(self, watcher: KeyValue.KeyWatcher) -> None:
        """Applies the watcher's entries (a replay of all, then updates) until it stops."""
        raise NotImplementedError

    async def _run(self) -> None:
        bucket = await self._link.open(self._bucket)
        while True:
            # A restarted nats-server has lost the watch's consumer, which nats-py
            # would notice only after two missed 5 s heartbeats and more: a revocation
            # made meanwhile took ~20 s to arrive. After an outage the watch starts anew.
            self._reconnected.clear()
            watcher = await bucket.watchall()
            ends = asyncio.create_task(self._stop_on_reconnect(watcher))
            try:
                await self._follow(watcher)
            finally:
                await cancel_and_wait(ends, f"the {self._name} watch's reconnect wait")
                with contextlib.suppress(Exception):
                    await watcher.stop()  # type: ignore[no-untyped-call]  # untyped in nats-py

    async def _bucket(self, js: JetStreamContext) -> KeyValue:
        for _ in range(BUCKET_LOOKUPS):
            try:
                return await self._lookup(js, False)
            except BucketNotFoundError:
                await asyncio.sleep(BUCKET_LOOKUP_SECONDS)
        return await self._lookup(js, True)

    async def _stop_on_reconnect(self, watcher: KeyValue.KeyWatcher) -> None:
        await self._reconnected.wait()
        await watcher.stop()  # type: ignore[no-untyped-call]  # untyped in nats-py


class RevocationWatch(BucketWatch):
    """Watches the revocations bucket into `revoked`; marks it loaded once all are read."""

    def __init__(self, access: NatsAccess, revoked: RevokedCredentials, replicas: int = 1) -> None:
        super().__init__(access, "farm-revocations")
        self._revoked = revoked
        self._replicas = replicas

    async def _lookup(self, js: JetStreamContext, create: bool) -> KeyValue:
        return await revocations_bucket(js, self._replicas, create)

    async def _follow(self, watcher: KeyValue.KeyWatcher) -> None:
        """Applies the watcher's entries (a replay of all, then updates) until it stops."""
        async for entry in watcher:
            if entry is None:
                # Every entry there was is read: from now on updates only.
                if not self._revoked.loaded:
                    log.info("credential revocations loaded")
                self._revoked.loaded = True
                continue
            if entry.operation is not None or not entry.value:
                self._revoked.remove(entry.key)
                continue
            try:
                self._revoked.add(Revocation.decode(entry.value))
            except ValueError as error:
                log.warning("revocation entry %s unreadable: %s", entry.key, error)
