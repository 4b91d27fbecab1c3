"""The NATS key-value buckets the agents share, and compare-and-set updates of their entries.

`farm_breakers`: each target origin's (host and port) circuit breaker.
`farm_host_slots`: each target host's concurrency leases and rate tokens.
`farm_tenant_slots`: each tenant's running-task leases (its maxRunningTasks).
`farm_task_waits`: how many deliveries of a task only waited (breaker open, host or
tenant busy, agent draining), so that they do not count as attempts. Keys are
origins (`<host>=<port>`), host names, tenant names or task ids; every update names
the revision it read, so agents never lose each other's updates.
"""

import re
from urllib.parse import urlsplit

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from farm_core.breakers import BREAKERS_BUCKET, breaker_key
from farm_core.kv import CAS_TRIES, Contended, Versioned, compare_and_set, is_valid_key, read
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

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_EMPTY_LABELS = re.compile(r"\.{2,}")
_DEFAULT_PORTS = {"http": 80, "https": 443}


async def _file_bucket(js: JetStreamContext, bucket: str, ttl: float, replicas: int) -> KeyValue:
    """The file-backed bucket `bucket` (entries dropped after `ttl` s), created on first use."""
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=bucket, ttl=ttl, storage=StorageType.FILE, direct=True, replicas=replicas
            )
        )


async def breakers_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """The bucket of the target hosts' circuit breakers, created on first use."""
    return await _file_bucket(js, BREAKERS_BUCKET, HOST_STATE_TTL_SECONDS, replicas)


async def host_slots_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """The bucket of the target hosts' concurrency leases and rate tokens."""
    return await _file_bucket(js, HOST_SLOTS_BUCKET, HOST_STATE_TTL_SECONDS, replicas)


async def tenant_slots_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """The bucket of the tenants' running-task leases."""
    return await _file_bucket(js, TENANT_SLOTS_BUCKET, HOST_STATE_TTL_SECONDS, replicas)


async def task_waits_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """The bucket of tasks' wait-only deliveries, kept as long as a task may stay queued."""
    return await _file_bucket(js, TASK_WAITS_BUCKET, QueueLimits().task_max_age_seconds, replicas)


def host_key(url: str) -> str:
    """The key of the URL's host (lower case, port ignored); "" when it has none."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    # Empty labels (`a..b`) would be empty subject tokens, which NATS refuses.
    return _EMPTY_LABELS.sub(".", _KEY_UNSAFE.sub("_", host.strip(".").lower()))


def origin_key(url: str) -> str:
    """The breaker key of the URL's host and port (the scheme's own when none is given).

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
    return breaker_key(host, port) if port else host


def tenant_key(tenant: str) -> str:
    """The key of a tenant's entry; "" when its name cannot be one."""
    return tenant if is_valid_key(tenant) else ""
