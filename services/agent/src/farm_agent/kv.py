"""The NATS key-value buckets the agents share, and compare-and-set updates of their entries.

`farm_breakers`: each target host's circuit breaker. `farm_host_slots`: each target
host's concurrency leases and rate tokens. `farm_tenant_slots`: each tenant's
running-task leases (its maxRunningTasks). `farm_task_waits`: how many deliveries
of a task only waited (breaker open, host or tenant busy, agent draining), so that
they do not count as attempts. Keys are host names, tenant names or task ids; every
update names the revision it read, so agents never lose each other's updates.
"""

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from farm_core.breakers import BREAKERS_BUCKET
from farm_core.queue import QueueLimits

log = logging.getLogger(__name__)

HOST_SLOTS_BUCKET = "farm_host_slots"
TENANT_SLOTS_BUCKET = "farm_tenant_slots"
TASK_WAITS_BUCKET = "farm_task_waits"
# An entry not written for this long is dropped: a breaker is closed again, slots fresh.
HOST_STATE_TTL_SECONDS = 24 * 3600.0
# Attempts to apply a change while other agents keep changing the same entry.
CAS_TRIES = 10

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_VALID_KEY = re.compile(r"^[-/_=.a-zA-Z0-9]+$")

Value = TypeVar("Value")


class Contended(Exception):
    """An entry changed under every one of CAS_TRIES attempts to update it."""


@dataclass(frozen=True)
class Versioned(Generic[Value]):
    """An entry's value (None: absent or unreadable) and its revision (0: absent)."""

    value: Value | None
    revision: int


async def _file_bucket(js: JetStreamContext, bucket: str, ttl: float) -> KeyValue:
    """The file-backed bucket `bucket` (entries dropped after `ttl` s), created on first use."""
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(bucket=bucket, ttl=ttl, storage=StorageType.FILE, direct=True)
        )


async def breakers_bucket(js: JetStreamContext) -> KeyValue:
    """The bucket of the target hosts' circuit breakers, created on first use."""
    return await _file_bucket(js, BREAKERS_BUCKET, HOST_STATE_TTL_SECONDS)


async def host_slots_bucket(js: JetStreamContext) -> KeyValue:
    """The bucket of the target hosts' concurrency leases and rate tokens."""
    return await _file_bucket(js, HOST_SLOTS_BUCKET, HOST_STATE_TTL_SECONDS)


async def tenant_slots_bucket(js: JetStreamContext) -> KeyValue:
    """The bucket of the tenants' running-task leases."""
    return await _file_bucket(js, TENANT_SLOTS_BUCKET, HOST_STATE_TTL_SECONDS)


async def task_waits_bucket(js: JetStreamContext) -> KeyValue:
    """The bucket of tasks' wait-only deliveries, kept as long as a task may stay queued."""
    return await _file_bucket(js, TASK_WAITS_BUCKET, QueueLimits().task_max_age_seconds)


def host_key(url: str) -> str:
    """The key of the URL's host (lower case, port ignored); "" when it has none."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return _KEY_UNSAFE.sub("_", host.strip(".").lower())


def tenant_key(tenant: str) -> str:
    """The key of a tenant's entry; "" when its name cannot be one."""
    return tenant if is_valid_key(tenant) else ""


def is_valid_key(key: str) -> bool:
    """Whether `key` may name a key-value entry."""
    return bool(_VALID_KEY.match(key)) and not key.startswith(".") and not key.endswith(".")


async def read(kv: KeyValue, key: str, decode: Callable[[bytes], Value]) -> Versioned[Value]:
    """The entry's value and revision; an unreadable value reads as None (and is overwritten)."""
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return Versioned(None, 0)
    try:
        return Versioned(decode(entry.value or b""), entry.revision or 0)
    except ValueError as error:
        log.warning("entry %s holds an unreadable value; starting it afresh: %s", key, error)
        return Versioned(None, entry.revision or 0)


async def compare_and_set(
    kv: KeyValue,
    key: str,
    change: Callable[[Value | None], Value | None],
    decode: Callable[[bytes], Value],
    encode: Callable[[Value], bytes],
    known: Versioned[Value] | None = None,
) -> Versioned[Value]:
    """Applies `change` to the entry's latest revision and stores the result; returns it.

    The update names the revision it read; if another agent wrote since, it reads
    again and retries. `change` returns None (or the same value) to leave the entry
    alone; `known` is a recently read entry to try first, saving a read when nobody
    changed it since.
    """
    current = known if known is not None else await read(kv, key, decode)
    for _ in range(CAS_TRIES):
        new = change(current.value)
        if new is None or new == current.value:
            return current
        try:
            if current.revision == 0:
                revision = await kv.create(key, encode(new))
            else:
                revision = await kv.update(key, encode(new), last=current.revision)
        except KeyWrongLastSequenceError:
            current = await read(kv, key, decode)
            continue
        return Versioned(new, revision)
    raise Contended(f"entry {key} kept changing during {CAS_TRIES} updates")
