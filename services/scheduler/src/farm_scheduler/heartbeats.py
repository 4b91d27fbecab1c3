"""The agents' latest heartbeats, as the `farm_agents` bucket holds them."""

import logging

import nats.errors
from google.protobuf.message import DecodeError
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from farm.queue.v1 import queue_pb2
from farm_core.errors import Unavailable
from farm_core.queue import AGENTS_BUCKET
from farm_core.shared_buckets import bucket_keys

log = logging.getLogger(__name__)


class Heartbeats:
    """Reads the AgentHeartbeats in the bucket, by agent id (expired ones are gone)."""

    def __init__(self, js: JetStreamContext, bucket: KeyValue) -> None:
        self._js = js
        self._bucket = bucket

    async def all(self) -> dict[str, queue_pb2.AgentHeartbeat]:
        """The latest heartbeat of every agent in the bucket, by agent id."""
        try:
            keys = await bucket_keys(self._js, AGENTS_BUCKET)
        except (nats.errors.Error, TimeoutError) as error:
            raise Unavailable(f"the agents' heartbeats cannot be read: {error}") from error
        beats: dict[str, queue_pb2.AgentHeartbeat] = {}
        for key in keys:
            heartbeat = await self.get(key)
            if heartbeat is not None:
                beats[heartbeat.agent_id] = heartbeat
        return beats

    async def get(self, agent_id: str) -> queue_pb2.AgentHeartbeat | None:
        """The agent's latest heartbeat; None if it sent none within the bucket's ttl."""
        try:
            entry = await self._bucket.get(agent_id)
        except KeyNotFoundError:
            return None
        except (nats.errors.Error, TimeoutError) as error:
            raise Unavailable(f"the agents' heartbeats cannot be read: {error}") from error
        return _decode(agent_id, entry.value)


def _decode(key: str, value: bytes | None) -> queue_pb2.AgentHeartbeat | None:
    heartbeat = queue_pb2.AgentHeartbeat()
    try:
        heartbeat.ParseFromString(value or b"")
    except DecodeError as error:
        log.warning("ignoring the heartbeat under %r: not an AgentHeartbeat: %s", key, error)
        return None
    if not heartbeat.agent_id:
        heartbeat.agent_id = key
    return heartbeat
