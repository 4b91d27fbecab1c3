"""The target hosts' circuit breakers, read at once from the `farm_breakers` bucket."""

import asyncio
import logging

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError

from farm_core.breakers import BREAKERS_BUCKET, BreakerEntry, read_breaker

log = logging.getLogger(__name__)

READ_TIMEOUT_SECONDS = 5.0


async def read_breakers(js: JetStreamContext) -> list[BreakerEntry]:
    """Every host's breaker now (hosts with a failure in the last day), by host.

    One watch of the bucket hands over its latest values at once; the agents
    create the bucket, so before the first failure there is none.
    """
    try:
        bucket = await js.key_value(BREAKERS_BUCKET)
    except BucketNotFoundError:
        return []
    watcher = await bucket.watchall(ignore_deletes=True)
    entries: list[BreakerEntry] = []
    try:
        async with asyncio.timeout(READ_TIMEOUT_SECONDS):
            async for entry in watcher:
                if entry is None:
                    break  # Caught up with the bucket.
                try:
                    entries.append(read_breaker(entry.key, entry.value or b""))
                except ValueError as error:
                    log.warning("ignoring the breaker entry %r: %s", entry.key, error)
    finally:
        try:
            await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py leaves it untyped
        except nats.errors.Error as error:
            log.debug("stopping the breakers' watch: %s", error)
    return sorted(entries, key=lambda breaker: breaker.host)
