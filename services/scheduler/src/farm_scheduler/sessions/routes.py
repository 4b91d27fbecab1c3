"""Sessions' routes in `farm_sessions` (which agent Envoy sends CDP and live attaches to).

The scheduler is the only writer of routes: a route decides whose browser a
tenant's CDP attach reaches, so the agents' NATS users may not touch the bucket
(farm_core.nats_roles). Once an agent has answered that the browser is open,
CreateSession claims the route for it, over whatever is there, before it records
the placement and before the caller learns the session's id (so no attach ever
finds a session without its route), and removes it again if the placement cannot
be recorded. As a close is recorded (an agent's answer to a close or a command, its
SessionClosed event, a lost agent) the route is removed, by the revision read, while
it names the closing agent, once the session is closed or gone (never one being
placed or open: see closer.py).
"""

import logging

import nats.errors
from nats.js.kv import KeyValue

from farm.queue.v1 import queue_pb2
from farm_core.errors import Unavailable
from farm_core.kv import delete_at
from farm_core.sessions import read_route

log = logging.getLogger(__name__)


class SessionRoutes:
    """Claims, reads and removes sessions' routes in the `farm_sessions` bucket."""

    def __init__(self, routes: KeyValue) -> None:
        self._routes = routes

    async def claim(self, route: queue_pb2.SessionRoute) -> int:
        """Makes `route` the session's route, whatever is there; its revision.

        Unavailable if NATS would not.
        """
        try:
            return await self._routes.put(route.session_id, route.SerializeToString())
        except (nats.errors.Error, TimeoutError) as error:
            raise Unavailable(
                f"session {route.session_id}: its route (where the edge reaches its browser) "
                f"could not be written: {error or type(error).__name__}; try again"
            ) from error

    async def release(self, session_id: str, revision: int) -> None:
        """Removes the route claimed at `revision`, unless it changed since; never raises."""
        try:
            await delete_at(self._routes, session_id, revision)
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("could not remove the route of session %s: %s", session_id, error)

    async def remove_left(self, session_id: str, agent_id: str) -> bool:
        """Removes a closed session's route while it names `agent_id`; whether it did.

        A route written between its reading and its removal stays. Unavailable if NATS
        would not.
        """
        try:
            current = await read_route(self._routes, session_id)
            if current.value is None or current.value.agent_id != agent_id:
                return False
            return await delete_at(self._routes, session_id, current.revision)
        except (nats.errors.Error, TimeoutError) as error:
            raise Unavailable(
                f"session {session_id}: the route its close left could not be removed: "
                f"{error or type(error).__name__}; try again"
            ) from error

    async def tenant(self, session_id: str) -> str:
        """The tenant the session's route names ("" when there is none to read)."""
        try:
            current = await read_route(self._routes, session_id)
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("could not read the route of session %s: %s", session_id, error)
            return ""
        return current.value.tenant if current.value is not None else ""
