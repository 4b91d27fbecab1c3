"""The NATS key-value buckets the agents share, and compare-and-set updates of their entries.

`farm_breakers`: each target origin's (host and port) circuit breaker.
`farm_host_slots`: each target host's concurrency leases and rate tokens.
`farm_tenant_slots`: each tenant's running-task leases (its maxRunningTasks).
`farm_task_waits`: how many deliveries of a task only waited (breaker open, host or
tenant busy, agent draining), so that they do not count as attempts. Keys are
origins (`<host>=<port>`), host names, tenant names or task ids; every update names
the revision it read, so agents never lose each other's updates.

These four are the agent's own: it creates them when they are missing, at start and
again when one is deleted under it (OwnBucket). The scheduler's buckets it uses
(route claims, cancels, sessions) it never makes again.
"""

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from farm_core.breakers import BREAKERS_BUCKET, breaker_key
from farm_core.kv import (
    CAS_TRIES,
    Contended,
    Versioned,
    compare_and_set,
    is_valid_key,
    open_bucket,
    read,
)
from farm_core.queue import QueueLimits

__all__ = [
    "CAS_TRIES",
    "Contended",
    "Versioned",
    "compare_and_set",
    "is_valid_key",
    "read",
]

HOST_SLOTS_BUCKET = "farm_host_slots"
TENANT_SLOTS_BUCKET = "farm_tenant_slots"
TASK_WAITS_BUCKET = "farm_task_waits"
# An entry not written for this long is dropped: a breaker is closed again, slots fresh.
HOST_STATE_TTL_SECONDS = 24 * 3600.0
OWN_BUCKETS: dict[str, float] = {
    BREAKERS_BUCKET: HOST_STATE_TTL_SECONDS,
    HOST_SLOTS_BUCKET: HOST_STATE_TTL_SECONDS,
    TENANT_SLOTS_BUCKET: HOST_STATE_TTL_SECONDS,
    # As long as a task may stay queued.
    TASK_WAITS_BUCKET: QueueLimits().task_max_age_seconds,
}
"""The buckets the agent makes (and makes again), by name, with their entries' time to live."""

log = logging.getLogger(__name__)

Result = TypeVar("Result")

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_EMPTY_LABELS = re.compile(r"\.{2,}")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def own_config(bucket: str, replicas: int = 1) -> KeyValueConfig:
    """How the agent makes its own bucket `bucket` (one of OWN_BUCKETS)."""
    return KeyValueConfig(
        bucket=bucket,
        ttl=OWN_BUCKETS[bucket],
        storage=StorageType.FILE,
        direct=True,
        replicas=replicas,
    )


class OwnBucket:
    """One of the agent's own buckets, made again (same config) when it is deleted under the agent.

    Without `js` (a bucket the agent was handed) it is never made again.
    """

    def __init__(
        self,
        kv: KeyValue,
        js: JetStreamContext | None = None,
        config: KeyValueConfig | None = None,
        connected: Callable[[], bool] = lambda: True,
    ) -> None:
        self.kv = kv
        self._js = js
        self._config = config
        self._connected = connected

    async def run(self, operation: Callable[[KeyValue], Awaitable[Result]]) -> Result:
        """`operation` on the bucket; once more if it failed because the bucket was gone.

        A deleted bucket answers a read with a timeout and a write with no stream
        (NoStreamResponseError), the same as a NATS in trouble; asking JetStream
        for the bucket tells them apart.
        """
        try:
            return await operation(self.kv)
        except (nats.errors.Error, TimeoutError):
            if not await self._made_again():
                raise
        return await operation(self.kv)

    async def _made_again(self) -> bool:
        """True when the bucket was gone and has been made again."""
        js, config = self._js, self._config
        if js is None or config is None or not config.bucket or not self._connected():
            return False
        try:
            await js.key_value(config.bucket)
            return False
        except BucketNotFoundError:
            pass
        except (nats.errors.Error, TimeoutError) as error:
            log.debug("could not ask whether bucket %s is there: %r", config.bucket, error)
            return False
        try:
            self.kv = await open_bucket(js, config)
        except (nats.errors.Error, TimeoutError) as error:
            log.warning(
                "NATS KV bucket %s is gone and could not be made again: %r", config.bucket, error
            )
            return False
        log.warning(
            "NATS KV bucket %s was gone (deleted under the agent, or lost with NATS's store): "
            "made it again, empty",
            config.bucket,
        )
        return True


async def open_own(
    js: JetStreamContext,
    bucket: str,
    replicas: int = 1,
    connected: Callable[[], bool] = lambda: True,
) -> OwnBucket:
    """The agent's own bucket `bucket` (one of OWN_BUCKETS), created on first use."""
    config = own_config(bucket, replicas)
    return OwnBucket(await open_bucket(js, config), js, config, connected)


async def breakers_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """The bucket of the target hosts' circuit breakers, created on first use."""
    return (await open_own(js, BREAKERS_BUCKET, replicas)).kv


async def host_slots_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """The bucket of the target hosts' concurrency leases and rate tokens."""
    return (await open_own(js, HOST_SLOTS_BUCKET, replicas)).kv


async def tenant_slots_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """The bucket of the tenants' running-task leases."""
    return (await open_own(js, TENANT_SLOTS_BUCKET, replicas)).kv


async def task_waits_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """The bucket of tasks' wait-only deliveries, kept as long as a task may stay queued."""
    return (await open_own(js, TASK_WAITS_BUCKET, replicas)).kv


def host_key(url: str) -> str:
    """The key of the URL's host (lower case, port ignored); "" when it has none."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    # Empty labels (`a..b`) would be empty subject tokens, which NATS refuses.
    return _EMPTY_LABELS.sub(".", _KEY_UNSAFE.sub("_", host.strip(".").lower()))


def origin_key(url: str, tenant: str = "") -> str:
    """The key of `tenant`'s breaker of the URL's host and port (the scheme's when none).

    "" when it has no host or its port is not one.
    """
    host = host_key(url)
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return ""
    if not host:
        return ""
    return breaker_key(host, port, tenant_key(tenant) if tenant else "")


def tenant_key(tenant: str) -> str:
    """The key of a tenant's entry; "" when its name cannot be one."""
    return tenant if is_valid_key(tenant) else ""
