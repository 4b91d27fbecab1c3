"""Names each revoked API key on NATS, so the agents end the session sockets it opened.

Each change of a key's secrets (a rotation) is named there too: the secrets that
still work, so the sockets (and WatchTask streams) opened with another one end.

The revoke itself is SQL's (the edge refuses the key from then on); the notice to
the agents follows it. A revoke waits a moment for its notice when NATS is there,
and never fails for want of NATS: the notice is then sent once NATS is back, for as
long as this replica runs; and each replica names again at start the keys revoked
within an entry's lifetime (SQL's record), so a notice lost with a replica is sent.
"""

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

import nats.errors
from nats.js.kv import KeyValue

from farm_core.cancel import cancel_and_wait
from farm_core.db import utcnow
from farm_core.key_revocations import revoked_keys_bucket, secrets_entry
from farm_core.key_validity import KeySecrets
from farm_core.nats_access import NatsAccess
from farm_core.nats_link import NatsLink

log = logging.getLogger(__name__)

PUBLISH_WAIT_SECONDS = 2.0
"""How long a revoke waits for its notice to be on NATS before it answers anyway."""
RETRY_SECONDS = 1.0


class KeyRevocationNotices:
    """Puts revoked key ids on the revoked-keys bucket (made here at start: agents only read it)."""

    def __init__(self, access: NatsAccess, replicas: int = 1) -> None:
        self._link = NatsLink(access, "auth-key-revocations")
        self._replicas = replicas
        self._bucket: KeyValue | None = None
        self._ready = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, recent: Iterable[str] = (), secrets: Iterable[KeySecrets] = ()) -> None:
        """Connects and makes the bucket in the background, then names the `recent` revokes.

        And the working `secrets` of keys whose secrets changed lately.
        """
        self._spawn(self._open(), "auth-key-revocations-open")
        for key_id in recent:
            self._spawn(self._send(*self._revoke_entry(key_id)), f"auth-key-revoked-{key_id}")
        for notice in secrets:
            self._spawn(self._send(*secrets_entry(notice)), f"auth-key-secrets-{notice.key_id}")

    async def close(self) -> None:
        """Stops sending (notices not yet sent are dropped) and closes the NATS connection."""
        for task in list(self._tasks):
            await cancel_and_wait(task, "a revoked key's notice")
        await self._link.close()

    async def publish(self, key_id: str) -> None:
        """Names `key_id` as revoked, at once if NATS takes it within a moment, else later."""
        await self._publish(*self._revoke_entry(key_id))

    async def publish_secrets(self, notice: KeySecrets) -> None:
        """Names the key's working secrets (after a rotation), as `publish` names a revoke."""
        await self._publish(*secrets_entry(notice))

    @staticmethod
    def _revoke_entry(key_id: str) -> tuple[str, bytes]:
        return key_id, utcnow().isoformat().encode()

    async def _publish(self, entry: str, value: bytes) -> None:
        sending = self._spawn(self._send(entry, value), f"auth-key-notice-{entry}")
        if self._ready.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PUBLISH_WAIT_SECONDS):
                    await asyncio.shield(sending)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send(self, entry: str, value: bytes) -> None:
        while True:
            await self._ready.wait()
            assert self._bucket is not None
            try:
                await self._bucket.put(entry, value)
                return
            except nats.errors.Error as error:
                log.warning("the notice %s is not on NATS yet: %s", entry, error)
                await asyncio.sleep(RETRY_SECONDS)

    async def _open(self) -> None:
        self._bucket = await self._link.open(lambda js: revoked_keys_bucket(js, self._replicas))
        self._ready.set()
