"""What the rest of the farm learns of a session: its route, and how it ended.

The route is written before the session answers its open order. Its removal and the
close's publication are best effort: a route left behind is removed by the scheduler,
which cleans up the routes of closed sessions it finds; a close is published a few times.
A route is removed only as this agent wrote it: a browser opened for a session that
the scheduler then placed on another agent (its opening here given up) must not take
that agent's route with it when it closes.
"""

import asyncio
import logging

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import BadRequestError
from nats.js.kv import KeyValue

from farm.queue.v1 import queue_pb2
from farm_core.sessions import closed_subject

log = logging.getLogger(__name__)

PUBLISH_TRIES = 5
PUBLISH_TIMEOUT_SECONDS = 5.0
WRONG_LAST_SEQUENCE = 10071
"""JetStream's error code for a write whose expected last revision is not the key's."""


async def write_route(routes: KeyValue | None, route: queue_pb2.SessionRoute) -> int:
    """Writes where the edge reaches the session; its revision. Needs the manager attached."""
    if routes is None:
        raise RuntimeError("the session manager is not attached to NATS")
    return await routes.put(route.session_id, route.SerializeToString())


async def forget_route(routes: KeyValue | None, session_id: str, revision: int) -> None:
    """Removes the session's route if it is still the one written at `revision` (none: 0).

    A route written since (another agent's, for the same session) stays.
    """
    if routes is None or not revision:
        return
    try:
        await routes.delete(session_id, last=revision)
    except BadRequestError as error:
        if error.err_code != WRONG_LAST_SEQUENCE:
            raise
        log.info("session %s: its route is another agent's now; it stays", session_id)
    except (nats.errors.Error, TimeoutError) as error:
        # The scheduler removes routes of closed sessions it finds left over.
        log.warning("could not remove the route of session %s: %s", session_id, error)


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
