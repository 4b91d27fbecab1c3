"""The close an agent last reported for a session, read straight from FARM_EVENTS.

An agent reports a close (its SessionClosed event) as the close begins, before it
ends the session's sockets; the event consumer applies it a moment later. A
client that saw its socket's close frame and asks GetSession at once must find
the session closed, so GetSession of an ACTIVE session reads the session's last
report from the stream (one message lookup) and applies it, as the consumer would.
"""

import asyncio
import logging

import nats.errors
import nats.js.errors
from google.protobuf.message import DecodeError
from nats.js import JetStreamContext

from farm.queue.v1 import queue_pb2
from farm_core.queue import EVENT_STREAM
from farm_core.sessions import closed_subject

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT_SECONDS = 2.0


class ReportedCloses:
    """Looks up the last SessionClosed an agent published for a session it holds."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js

    async def last(self, session_id: str, agent_id: str) -> queue_pb2.SessionClosed | None:
        """The agent's last report of the session's close; None if none (or unreadable)."""
        subject = closed_subject(session_id, agent_id)
        try:
            async with asyncio.timeout(LOOKUP_TIMEOUT_SECONDS):
                message = await self._js.get_last_msg(EVENT_STREAM, subject)
        except nats.js.errors.NotFoundError:
            return None
        except (nats.errors.Error, TimeoutError) as error:
            # The consumer applies the report anyway; the session reads ACTIVE until then.
            log.warning("session %s: its reported close could not be read: %s", session_id, error)
            return None
        closed = queue_pb2.SessionClosed()
        try:
            closed.ParseFromString(message.data or b"")
        except DecodeError:
            return None
        if closed.session_id != session_id or closed.agent_id != agent_id:
            return None
        return closed
