"""Applies the agents' SessionClosed events: a durable pull consumer on `events.sessions.>`.

The closing agent is the one the subject names (`events.sessions.<session_id>.<agent_id>`,
which only that agent's NATS user may publish); it closes only a session it holds.
"""

import logging

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from sqlalchemy.exc import SQLAlchemyError

from farm.queue.v1 import queue_pb2
from farm_core.errors import Unavailable
from farm_core.queue import settle
from farm_core.sessions import SESSION_EVENTS
from farm_scheduler.events import RETRY_SECONDS, DurableConsumer, bound_agent_refusal
from farm_scheduler.sessions.closer import SessionCloser

log = logging.getLogger(__name__)

DURABLE_NAME = "scheduler-sessions"


class SessionEventConsumer(DurableConsumer):
    """Records each SessionClosed an agent publishes, once, whichever replica applies it.

    The route the close left goes too (SessionCloser.apply_event); an event applied in
    part is taken again later.
    """

    def __init__(
        self, closer: SessionCloser, ack_wait_seconds: float, accept_unbound: bool = False
    ) -> None:
        super().__init__(DURABLE_NAME, SESSION_EVENTS, self._handle, ack_wait_seconds)
        self._closer = closer
        self._accept_unbound = accept_unbound

    async def _handle(self, message: Msg) -> None:
        closed = queue_pb2.SessionClosed()
        try:
            closed.ParseFromString(message.data)
        except DecodeError as error:
            log.error("dropping a message on %s: not a SessionClosed: %s", message.subject, error)
            await settle(message.term(), message.subject)
            return
        refusal = bound_agent_refusal(
            message.subject, closed.agent_id, self._accept_unbound, "sessions"
        )
        if refusal:
            log.warning(
                "dropping the close of session %s by agent %r: %s",
                closed.session_id,
                closed.agent_id,
                refusal,
            )
            await settle(message.term(), message.subject)
            return
        try:
            await self._closer.apply_event(closed)
        except (SQLAlchemyError, OSError, Unavailable) as error:
            log.warning("recording the close of session %s failed: %s", closed.session_id, error)
            await settle(message.nak(delay=RETRY_SECONDS), message.subject)
            return
        await settle(message.ack(), message.subject)
