"""Applies the agents' SessionClosed events: a durable pull consumer on `events.sessions.>`."""

import logging

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from sqlalchemy.exc import SQLAlchemyError

from farm.queue.v1 import queue_pb2
from farm_core.errors import Unavailable
from farm_core.queue import settle
from farm_core.sessions import SESSION_EVENTS
from farm_scheduler.events import RETRY_SECONDS, DurableConsumer
from farm_scheduler.sessions.closer import SessionCloser

log = logging.getLogger(__name__)

DURABLE_NAME = "scheduler-sessions"


class SessionEventConsumer(DurableConsumer):
    """Records each SessionClosed an agent publishes, once, whichever replica applies it."""

    def __init__(self, closer: SessionCloser, ack_wait_seconds: float) -> None:
        super().__init__(DURABLE_NAME, SESSION_EVENTS, self._handle, ack_wait_seconds)
        self._closer = closer

    async def _handle(self, message: Msg) -> None:
        closed = queue_pb2.SessionClosed()
        try:
            closed.ParseFromString(message.data)
        except DecodeError as error:
            log.error("dropping a message on %s: not a SessionClosed: %s", message.subject, error)
            await settle(message.term(), message.subject)
            return
        try:
            await self._closer.apply(closed)
        except (SQLAlchemyError, OSError, Unavailable) as error:
            log.warning("recording the close of session %s failed: %s", closed.session_id, error)
            await settle(message.nak(delay=RETRY_SECONDS), message.subject)
            return
        await settle(message.ack(), message.subject)
