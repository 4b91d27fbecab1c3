"""Where sessions' browsers are, for the edge: the `farm_sessions` bucket, and spent view tokens.

The auth service connects to NATS in the background (it starts without it); until
the bucket is reachable, attaching to a session is refused as unavailable. While
NATS does not answer (the check's NatsPause), a route read in the last
ROUTE_MEMORY_SECONDS is answered from memory, and any other attach is refused as
unavailable at once, not after Envoy stopped waiting. View tokens are used once:
each token id is created in `farm_view_tokens`, whose entries live as long as a
token could.
"""

import asyncio
import contextlib
import logging

import nats.errors
from cachetools import TTLCache
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from farm.queue.v1 import queue_pb2
from farm_core.errors import Unavailable
from farm_core.kv import open_bucket
from farm_core.nats_access import NatsAccess
from farm_core.nats_link import NatsLink, NatsPause, NatsPaused, unanswered
from farm_core.sessions import SESSION_ID_PATTERN, decode_route, sessions_bucket

log = logging.getLogger(__name__)

VIEW_TOKENS_BUCKET = "farm_view_tokens"
# Once CreateSession has answered (before it, nobody knows the session's id) a route
# changes only when its session closes, and the agent refuses an attach to a session
# it no longer holds: a route read lately is safe to use while NATS stalls.
ROUTE_MEMORY_SECONDS = 60.0
ROUTE_MEMORY_ENTRIES = 10_000


class SessionRoutes:
    """Reads SessionRoutes and spends view tokens, over a NATS connection of its own."""

    def __init__(
        self,
        nats: NatsAccess,
        view_token_ttl_seconds: float,
        pause: NatsPause,
        replicas: int = 1,
    ) -> None:
        self._link = NatsLink(nats, "farm-auth-sessions", pause=pause)
        self._recent: TTLCache[str, queue_pb2.SessionRoute] = TTLCache(
            ROUTE_MEMORY_ENTRIES, ROUTE_MEMORY_SECONDS
        )
        self._replicas = replicas
        self._view_token_ttl_seconds = view_token_ttl_seconds
        self._buckets: tuple[KeyValue, KeyValue] | None = None
        self._opening: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Connects in the background."""
        self._opening = asyncio.create_task(self._open(), name="auth-session-routes")

    async def close(self) -> None:
        """Stops connecting and closes the connection."""
        if self._opening is not None:
            self._opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._opening
        await self._link.close()

    async def route(self, session_id: str) -> queue_pb2.SessionRoute | None:
        """The session's route; None when no agent holds it (closed, or never opened).

        While NATS does not answer, the route read last within ROUTE_MEMORY_SECONDS;
        Unavailable without one.
        """
        if not SESSION_ID_PATTERN.fullmatch(session_id):
            # No session has it, and it may be no NATS key either: a client's path
            # must not read as NATS being down (a 503 counted against auth's check).
            return None
        routes, _ = self._ready()
        try:
            entry = await self._link.call(lambda: routes.get(session_id))
        except KeyNotFoundError:
            self._recent.pop(session_id, None)
            return None
        except (nats.errors.Error, TimeoutError, NatsPaused) as error:
            recent = self._recent.get(session_id)
            if recent is not None and (isinstance(error, NatsPaused) or unanswered(error)):
                log.debug("the route of session %s answered from memory: %s", session_id, error)
                return recent
            raise Unavailable(
                f"the route of session {session_id} cannot be read now: {_cause(error)}"
            ) from error
        try:
            route = decode_route(entry.value or b"")
        except ValueError as error:
            log.warning("the route of session %s is unreadable: %s", session_id, error)
            return None
        self._recent[session_id] = route
        return route

    async def spend(self, token_id: str) -> bool:
        """Marks a view token used; False when it was used before."""
        _, spent = self._ready()
        try:
            await self._link.call(lambda: spent.create(token_id, b""))
        except KeyWrongLastSequenceError:
            return False
        except (nats.errors.Error, TimeoutError, NatsPaused) as error:
            raise Unavailable(f"view tokens cannot be checked now: {_cause(error)}") from error
        return True

    def _ready(self) -> tuple[KeyValue, KeyValue]:
        if self._buckets is None:
            raise Unavailable("the auth service is not connected to NATS yet")
        return self._buckets

    async def _open(self) -> None:
        self._buckets = await self._link.open(self._prepare)

    async def _prepare(self, js: JetStreamContext) -> tuple[KeyValue, KeyValue]:
        routes = await sessions_bucket(js, self._replicas)
        spent = await open_bucket(
            js,
            KeyValueConfig(
                bucket=VIEW_TOKENS_BUCKET,
                ttl=self._view_token_ttl_seconds,
                storage=StorageType.FILE,
                replicas=self._replicas,
            ),
        )
        return routes, spent


def _cause(error: Exception) -> str:
    """What went wrong, in a refusal's words."""
    if isinstance(error, NatsPaused):
        return str(error)
    if unanswered(error):
        return f"NATS did not answer ({str(error) or type(error).__name__})"
    return str(error) or type(error).__name__
