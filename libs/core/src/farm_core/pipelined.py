"""JetStream publishes sent back to back, their acknowledgements awaited later.

nats-py's `publish_async` waits for a slot among its in-flight publishes with
`asyncio.wait_for(..., wait_stall)`, which makes a task and yields to the event loop
on every call, even when slots are free. Each yield lets the client's flusher write
the one message buffered so far: a group of N publishes cost N socket writes and N
wake-ups. While slots are free, `send` asks for one without a deadline, which takes
it at once without yielding, so a group's messages leave in one write.
"""

import asyncio
from collections.abc import Sequence

from nats.js import JetStreamContext
from nats.js.api import PubAck

FREE_SLOTS_MARGIN = 500
"""In-flight publishes below nats-py's limit (4,000 by default) at which a stall may begin."""
IN_FLIGHT_LIMIT = 4000
"""nats-py's default `publish_async_max_pending`, which the farm's connections keep."""


async def send(
    js: JetStreamContext,
    subject: str,
    payload: bytes,
    headers: dict[str, str],
    stall_seconds: float,
) -> asyncio.Future[PubAck]:
    """Sends one publish; its acknowledgement's future.

    Waits up to `stall_seconds` for a slot only when nearly all are taken
    (TooManyStalledMsgsError after); otherwise does not yield to the loop.
    """
    free = js.publish_async_pending() < IN_FLIGHT_LIMIT - FREE_SLOTS_MARGIN
    return await js.publish_async(
        subject, payload, wait_stall=None if free else stall_seconds, headers=headers
    )


async def confirmed(
    acks: Sequence[asyncio.Future[PubAck]], timeout_seconds: float
) -> set[asyncio.Future[PubAck]]:
    """Those of `acks` that JetStream confirmed within `timeout_seconds`; the rest are cancelled."""
    if not acks:
        return set()
    done, pending = await asyncio.wait(acks, timeout=timeout_seconds)
    for ack in pending:
        # Cancelling frees the client's slot for an in-flight publish.
        ack.cancel()
    return {ack for ack in done if not ack.cancelled() and ack.exception() is None}
