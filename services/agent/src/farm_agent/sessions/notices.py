"""What the rest of the farm learns of a session: its route, and how it ended.

The route is created before the session answers its open order, only where there is
none: an agent whose opening the scheduler gave up on may open its browser after the
session was placed on another agent, and must not take that agent's route. The
scheduler claims the route for the agent it records as the session's once that
agent's answer comes (over a route such an agent created first), so a route this
agent did not create may name it, and one it created may name another agent since.
A route is removed only while it names this agent. Its removal and the close's
publication are best effort: a route a close leaves behind is removed by the
scheduler as it applies the close's event, if the session is closed (or gone) and the
route still names this agent (farm_scheduler's sessions.closer); a close is published
a few times. (A browser closed as it opens, past its bound, publishes no close: should
the removal of the route it had just created fail, the route stays.)
"""

import asyncio
import logging

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from farm.queue.v1 import queue_pb2
from farm_core.kv import delete_at
from farm_core.sessions import closed_subject, read_route

log = logging.getLogger(__name__)

PUBLISH_TRIES = 5
PUBLISH_TIMEOUT_SECONDS = 5.0


async def write_route(routes: KeyValue | None, route: queue_pb2.SessionRoute) -> None:
    """Creates the session's route, unless there is one. Needs the manager attached."""
    if routes is None:
        raise RuntimeError("the session manager is not attached to NATS")
    try:
        await routes.create(route.session_id, route.SerializeToString())
    except KeyWrongLastSequenceError:
        log.info("session %s: a route is there already; the scheduler decides", route.session_id)


async def forget_route(routes: KeyValue | None, session_id: str, agent_id: str) -> None:
    """Removes the session's route if it names `agent_id` (this agent).

    A route naming another agent (the scheduler's choice) stays, as does one
    written between its reading and its removal.
    """
    if routes is None:
        return
    try:
        current = await read_route(routes, session_id)
        if current.value is None or current.value.agent_id != agent_id:
            if current.value is not None:
                log.info("session %s: its route names another agent; it stays", session_id)
            return
        if not await delete_at(routes, session_id, current.revision):
            log.info("session %s: its route changed as it was removed; it stays", session_id)
    except (nats.errors.Error, TimeoutError) as error:
        # The scheduler removes it as it applies the close's event.
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
