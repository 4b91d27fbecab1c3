"""The agents' heartbeats read from a real nats-server's `farm_agents` bucket."""

import pytest
from nats.aio.client import Client

from farm.queue.v1 import queue_pb2
from farm_core.shared_buckets import agents_bucket, bucket_keys
from farm_scheduler.heartbeats import Heartbeats

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
async def empty_bucket(nc: Client) -> None:
    """Each test starts with no heartbeat in the agents' bucket."""
    js = nc.jetstream()
    bucket = await agents_bucket(js)
    for key in await bucket_keys(js, "farm_agents"):
        await bucket.purge(key)


async def test_every_agent_that_beats_is_read_and_a_deleted_one_is_not(nc: Client) -> None:
    js = nc.jetstream()
    bucket = await agents_bucket(js)
    for agent_id in ("agent-a", "agent-b", "agent-c"):
        beat = queue_pb2.AgentHeartbeat(agent_id=agent_id, concurrency=2)
        await bucket.put(agent_id, beat.SerializeToString())
    await bucket.put("agent-a", queue_pb2.AgentHeartbeat(concurrency=5).SerializeToString())
    await bucket.delete("agent-c")
    heartbeats = Heartbeats(js, bucket)

    # Read many times: KeyValue.keys() now and then saw none of them (nats.py issue 842).
    for _ in range(50):
        beats = await heartbeats.all()
        assert sorted(beats) == ["agent-a", "agent-b"]
    assert beats["agent-a"].concurrency == 5
    assert beats["agent-a"].agent_id == "agent-a"
    assert await heartbeats.get("agent-c") is None
    assert await heartbeats.get("agent-z") is None


async def test_an_empty_bucket_has_no_heartbeats(nc: Client) -> None:
    js = nc.jetstream()
    assert await Heartbeats(js, await agents_bucket(js)).all() == {}
