"""A key-value bucket is opened if it is there and made otherwise, by racing processes too."""

import asyncio
import uuid

import pytest
from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType

from farm_core.kv import open_bucket

pytestmark = pytest.mark.integration


def config(bucket: str, ttl: float) -> KeyValueConfig:
    """A memory bucket's config with entries that live `ttl` seconds."""
    return KeyValueConfig(bucket=bucket, ttl=ttl, storage=StorageType.MEMORY)


async def test_processes_opening_a_missing_bucket_at_once_all_get_the_one_made(
    nc: Client,
) -> None:
    js = nc.jetstream()
    bucket = f"test_open_{uuid.uuid4().hex[:8]}"
    try:
        # Different settings as well: whoever made it first, the others open that one.
        opened = await asyncio.gather(*(open_bucket(js, config(bucket, 60 + n)) for n in range(6)))

        for kv in opened:
            await kv.put(f"from-{id(kv)}", b"1")
        keys = await (await js.key_value(bucket)).keys()
        assert len(keys) == 6
    finally:
        await js.delete_key_value(bucket)


async def test_a_bucket_already_there_keeps_its_settings_and_entries(nc: Client) -> None:
    js = nc.jetstream()
    bucket = f"test_open_{uuid.uuid4().hex[:8]}"
    made = await js.create_key_value(config(bucket, 60))
    try:
        await made.put("kept", b"yes")

        opened = await open_bucket(js, config(bucket, 5))

        assert (await opened.get("kept")).value == b"yes"
        assert (await opened.status()).ttl == 60
    finally:
        await js.delete_key_value(bucket)
