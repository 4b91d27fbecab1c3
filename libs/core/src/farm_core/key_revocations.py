"""Revoked API keys: auth names each on a key-value bucket, agents end the sockets it opened.

A key is checked where a request enters (auth's check at the edge), so a session's
CDP or live-frames socket, once open, would outlive its key's revoke. Auth puts the
id of every key it revokes on REVOKED_KEYS_BUCKET (key: the key id); each agent
watches the bucket and closes the sockets opened with that key, which the signed
identity of their upgrade named. An entry lasts REVOKED_KEY_TTL_SECONDS, so an agent
that was away from NATS when the key was revoked still finds it when its watch
starts anew.

A key's secrets changing (RotateApiKey) is named there too, under
`secrets.<key id>`: the secrets that still work (farm_core.key_validity.KeySecrets),
so that the streams opened with another one end.
"""

import json
import logging
from collections.abc import Awaitable, Callable

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from farm_core.key_validity import KeySecrets
from farm_core.kv import open_bucket
from farm_core.nats_access import NatsAccess
from farm_core.revocation_watch import BucketWatch

log = logging.getLogger(__name__)

REVOKED_KEYS_BUCKET = "farm_revoked_keys"
REVOKED_KEY_TTL_SECONDS = 86400.0
"""As long as a session may live by default (FARM_SCHEDULER_SESSION_MAX_LIFETIME_SECONDS)."""
KEY_REVOKED_REASON = "API key {key_id} revoked"
"""The close reason of a socket whose key was revoked."""
SECRETS_ENTRY_PREFIX = "secrets."
"""The bucket's entries that name a key's working secrets, not a revoke: then its id."""


def secrets_entry(notice: KeySecrets) -> tuple[str, bytes]:
    """The bucket's entry (key, value) that names the key's working secrets."""
    return SECRETS_ENTRY_PREFIX + notice.key_id, json.dumps(notice.to_json()).encode()


def live_identity_key(token_id: str, asker: str) -> str:
    """The key id of a live view's identity (no API key): its token, and the key that asked."""
    return f"live:{token_id[:12]}:{asker}" if asker else f"live:{token_id[:12]}"


def opening_key(key_id: str) -> str:
    """The API key behind an identity's key id: a live view's asker, else the key id itself."""
    if key_id.startswith("live:"):
        return key_id.split(":", 2)[2] if key_id.count(":") >= 2 else ""
    return key_id


async def revoked_keys_bucket(
    js: JetStreamContext, replicas: int = 1, create: bool = True
) -> KeyValue:
    """The bucket of revoked API key ids; made on first use when `create` (auth, open NATS)."""
    if not create:
        return await js.key_value(REVOKED_KEYS_BUCKET)
    return await open_bucket(
        js,
        KeyValueConfig(
            bucket=REVOKED_KEYS_BUCKET,
            storage=StorageType.FILE,
            replicas=replicas,
            ttl=REVOKED_KEY_TTL_SECONDS,
        ),
    )


class KeyRevocationWatch(BucketWatch):
    """Calls `on_revoked(key_id)` for each revoked key: those on the bucket, then each new one.

    With `on_secrets`, also calls it with each notice of a key's working secrets (its
    latest). After a reconnect the entries are replayed, so a key may be named more
    than once.
    """

    def __init__(
        self,
        access: NatsAccess,
        on_revoked: Callable[[str], Awaitable[None]],
        replicas: int = 1,
        on_secrets: Callable[[KeySecrets], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(access, "farm-key-revocations")
        self._on_revoked = on_revoked
        self._on_secrets = on_secrets
        self._replicas = replicas

    async def _lookup(self, js: JetStreamContext, create: bool) -> KeyValue:
        return await revoked_keys_bucket(js, self._replicas, create)

    async def _follow(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            if entry is None or entry.operation is not None:
                continue  # the end of the replay, or an entry gone (its value says nothing)
            try:
                if not entry.key.startswith(SECRETS_ENTRY_PREFIX):
                    await self._on_revoked(entry.key)
                elif self._on_secrets is not None:
                    key_id = entry.key.removeprefix(SECRETS_ENTRY_PREFIX)
                    await self._on_secrets(KeySecrets.from_json(key_id, json.loads(entry.value)))
            except Exception:
                log.exception("ending the streams of API key %s failed", entry.key)
