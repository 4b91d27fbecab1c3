"""NATS key-value buckets: opening them (made on first use) and compare-and-set updates.

Every update names the revision it read; if another process wrote since, the
change is applied again to what it wrote, so no process loses another's update.
"""

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from nats.js import JetStreamContext
from nats.js.api import Header, KeyValueConfig
from nats.js.errors import (
    APIError,
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KV_DEL, KV_OP, KeyValue

log = logging.getLogger(__name__)

# Attempts to apply a change while other processes keep changing the same entry.
CAS_TRIES = 10
WRONG_LAST_SEQUENCE = frozenset({10071, 10164})
"""JetStream's error codes for a write whose expected last revision is not the key's."""

_VALID_KEY = re.compile(r"^[-/_=.a-zA-Z0-9]+$")

Value = TypeVar("Value")


class Contended(Exception):
    """An entry changed under every one of CAS_TRIES attempts to update it."""


@dataclass(frozen=True)
class Versioned(Generic[Value]):
    """An entry's value (None: absent or unreadable) and its revision (0: absent)."""

    value: Value | None
    revision: int


async def open_bucket(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    """The bucket `config.bucket` if it is there, else made with `config`.

    Another process may make it at the same moment: a create that finds it made
    (with the same settings, or with others such as its replicas) opens that one.
    """
    try:
        return await js.key_value(config.bucket)
    except BucketNotFoundError:
        pass
    try:
        # Idempotent: a bucket made meanwhile with the same config is answered as made.
        return await js.create_key_value(config)
    except APIError:
        try:
            return await js.key_value(config.bucket)
        except BucketNotFoundError:
            pass
        raise


def is_valid_key(key: str) -> bool:
    """Whether `key` may name a key-value entry."""
    # A key is a NATS subject's tail: an empty token (`a..b`) is a permissions violation.
    return (
        bool(_VALID_KEY.match(key))
        and not key.startswith(".")
        and not key.endswith(".")
        and ".." not in key
    )


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


async def delete_at(kv: KeyValue, key: str, revision: int) -> bool:
    """Removes the entry if its latest revision is still `revision`; whether it did."""
    if revision <= 0:
        # No revision: nothing was read, and delete() would remove whatever is there.
        return False
    try:
        await kv.delete(key, last=revision)
    except APIError as error:
        if error.err_code not in WRONG_LAST_SEQUENCE:
            raise
        return False
    return True


async def latest_revision(kv: KeyValue, key: str) -> int:
    """The key's latest revision, a delete's included; 0 if it has none (never written, expired)."""
    try:
        entry = await kv.get(key)
    except KeyNotFoundError as error:
        # A deleted key's error carries its delete marker, whose revision a write must name.
        return (error.entry.revision or 0) if error.entry is not None else 0
    return entry.revision or 0


async def delete_if_new(js: JetStreamContext, bucket: str, key: str) -> bool:
    """Writes a delete marker for a key that has no revision yet; whether it did.

    KeyValue.delete cannot ask for that (last=0 deletes whatever is there). The
    marker gives the key a revision: a process that read it as absent, and writes
    it only if it still is (create, update with last=0), fails and reads it again.
    """
    headers = {KV_OP: KV_DEL, Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value: "0"}
    try:
        await js.publish(f"$KV.{bucket}.{key}", headers=headers)
    except APIError as error:
        if error.err_code not in WRONG_LAST_SEQUENCE:
            raise
        return False
    return True


async def compare_and_set(
    kv: KeyValue,
    key: str,
    change: Callable[[Value | None], Value | None],
    decode: Callable[[bytes], Value],
    encode: Callable[[Value], bytes],
    known: Versioned[Value] | None = None,
) -> Versioned[Value]:
    """Applies `change` to the entry's latest revision and stores the result; returns it.

    `change` returns None (or the same value) to leave the entry alone; `known` is
    a recently read entry to try first, saving a read when nobody changed it since.
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
