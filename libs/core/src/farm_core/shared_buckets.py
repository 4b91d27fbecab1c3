"""The key-value buckets the scheduler and the agents share: ended tasks, route claims, heartbeats.

Each is opened if it is there and made on first use otherwise, with the limits of
`QueueLimits`; their names are in `farm_core.queue`, beside the streams and subjects.
"""

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from farm_core.kv import open_bucket
from farm_core.queue import AGENTS_BUCKET, CANCEL_BUCKET, ROUTES_BUCKET, QueueLimits


async def _on_disk(js: JetStreamContext, bucket: str, ttl: float, replicas: int) -> KeyValue:
    """The on-disk bucket `bucket` whose entries live `ttl` seconds, made on first use."""
    config = KeyValueConfig(bucket=bucket, ttl=ttl, storage=StorageType.FILE, replicas=replicas)
    return await open_bucket(js, config)


async def cancel_bucket(
    js: JetStreamContext, limits: QueueLimits | None = None, replicas: int = 1
) -> KeyValue:
    """The key-value bucket of ended tasks (their reason by task id), created on first use."""
    ttl = (limits or QueueLimits()).cancel_ttl_seconds
    return await _on_disk(js, CANCEL_BUCKET, ttl, replicas)


async def routes_bucket(
    js: JetStreamContext, limits: QueueLimits | None = None, replicas: int = 1
) -> KeyValue:
    """The key-value bucket of route claims (a Claim by WorkItem.claim_key), made on first use."""
    # As long as a task may wait in FARM_TASKS: a claim outlives its message.
    ttl = (limits or QueueLimits()).task_max_age_seconds
    return await _on_disk(js, ROUTES_BUCKET, ttl, replicas)


async def agents_bucket(
    js: JetStreamContext, limits: QueueLimits | None = None, replicas: int = 1
) -> KeyValue:
    """The key-value bucket of the agents' heartbeats (AgentHeartbeat by agent id).

    On disk, so a restarted nats-server still lists the agents (the ttl keeps it small).
    """
    ttl = (limits or QueueLimits()).agent_ttl_seconds
    return await _on_disk(js, AGENTS_BUCKET, ttl, replicas)


async def bucket_keys(js: JetStreamContext, bucket: str) -> list[str]:
    """The keys of the key-value bucket `bucket` that hold a value or a delete marker.

    Read from the bucket's stream state rather than with KeyValue.keys(): its watcher
    may see none of the keys there are and raise NoKeysError (nats.py issue 842).
    """
    prefix = f"$KV.{bucket}."
    info = await js.stream_info(f"KV_{bucket}", subjects_filter=f"{prefix}>")
    return sorted(subject.removeprefix(prefix) for subject in info.state.subjects or {})
