"""How a session ended, as the rest of the farm learns it: its SessionClosed event.

The agent writes no session route: the scheduler alone writes and removes them
(farm_scheduler's sessions.routes), and the agent's NATS user may not touch the
`farm_sessions` bucket (farm_core.nats_roles). A close is published a few times; the
scheduler removes the session's route as it applies the close's event.
"""

import asyncio
import logging

import nats.errors
from nats.js import JetStreamContext

from farm.queue.v1 import queue_pb2
from farm_core.sessions import closed_subject

log = logging.getLogger(__name__)

PUBLISH_TRIES = 5
PUBLISH_TIMEOUT_SECONDS = 5.0


async def publish_closed(js: JetStreamContext | None, closed: queue_pb2.SessionClosed) -> None:
    """Publishes how the session ended, trying a few times (none without NATS)."""
    if js is None:
        return
    subject = closed_subject(closed.session_id, closed.agent_id)
    payload = closed.SerializeToString()
    for attempt in range(1, PUBLISH_TRIES + 1):
        try:
            await js.publish(
                subject,
                payload,
                timeout=PUBLISH_TIMEOUT_SECONDS,
                headers={"Nats-Msg-Id": closed.event_id},
            )
            return
        except (nats.errors.Error, TimeoutError) as error:
            log.warning(
                "session %s: publishing its close failed (try %d of %d): %s",
                closed.session_id,
                attempt,
                PUBLISH_TRIES,
                error,
            )
            await asyncio.sleep(min(2.0**attempt / 4, 5.0))
