"""The agent's own buckets are made again when they are deleted under it."""

import asyncio

import pytest
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from farm_agent.kv import (
    TASK_WAITS_BUCKET,
    TENANT_SLOTS_BUCKET,
    OwnBucket,
    open_own,
    task_waits_bucket,
)
from farm_agent.work.waits import WaitLedger

pytestmark = pytest.mark.integration


async def test_two_agents_making_a_deleted_bucket_again_at_once_both_go_on(
    js: JetStreamContext,
) -> None:
    buckets = [await open_own(js, TENANT_SLOTS_BUCKET) for _ in range(2)]
    await js.delete_key_value(TENANT_SLOTS_BUCKET)

    async def write(bucket: OwnBucket, key: str) -> int:
        async def put(kv: KeyValue) -> int:
            return await kv.put(key, b"1")

        return await bucket.run(put)

    revisions = await asyncio.gather(write(buckets[0], "tenant-a"), write(buckets[1], "tenant-b"))

    assert sorted(revisions) == [1, 2]
    kv = await js.key_value(TENANT_SLOTS_BUCKET)
    assert sorted(await kv.keys()) == ["tenant-a", "tenant-b"]


async def test_a_bucket_the_agent_was_handed_is_not_made_again(js: JetStreamContext) -> None:
    ledger = WaitLedger(await task_waits_bucket(js))
    await js.delete_key_value(TASK_WAITS_BUCKET)

    await ledger.add_wait("task-1.1")

    with pytest.raises(BucketNotFoundError):
        await js.key_value(TASK_WAITS_BUCKET)


async def test_a_task_waits_bucket_deleted_under_the_agent_is_made_again(
    js: JetStreamContext,
) -> None:
    ledger = await WaitLedger.open(js)
    await js.delete_key_value(TASK_WAITS_BUCKET)

    await ledger.add_wait("task-1.1")

    assert await ledger.attempt_number("task-1.1", 3) == 2
