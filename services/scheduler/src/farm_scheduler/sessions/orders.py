"""The scheduler's side of the session orders: NATS requests to the agent that holds a session."""

import logging

import nats.errors
from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client

from farm.queue.v1 import queue_pb2
from farm_core.sessions import SessionOrder, order_subject
from farm_core.trace_context import producing

log = logging.getLogger(__name__)


class AgentGone(Exception):
    """Nobody listens on the agent's subject: it is not running (or not reachable)."""


class AgentSilent(Exception):
    """The agent took the order but did not answer in time."""


class AgentOrders:
    """Sends open, run and close orders and reads the agents' SessionReplies."""

    def __init__(self, nc: Client, open_timeout_seconds: float, close_timeout_seconds: float):
        self._nc = nc
        self._open_timeout_seconds = open_timeout_seconds
        self._close_timeout_seconds = close_timeout_seconds

    async def open(
        self, agent_id: str, order: queue_pb2.OpenSessionOrder
    ) -> queue_pb2.SessionReply:
        """Asks `agent_id` to open a session's browser."""
        return await self._ask(agent_id, SessionOrder.OPEN, order, self._open_timeout_seconds)

    async def run(
        self, agent_id: str, order: queue_pb2.SessionCommandOrder, timeout_seconds: float
    ) -> queue_pb2.SessionReply:
        """Asks the agent holding the session to run a command; waits up to the timeout."""
        return await self._ask(agent_id, SessionOrder.RUN, order, timeout_seconds)

    async def close(
        self, agent_id: str, order: queue_pb2.CloseSessionOrder
    ) -> queue_pb2.SessionReply:
        """Asks the agent holding the session to close it."""
        return await self._ask(agent_id, SessionOrder.CLOSE, order, self._close_timeout_seconds)

    async def _ask(
        self, agent_id: str, verb: SessionOrder, order: Message, timeout_seconds: float
    ) -> queue_pb2.SessionReply:
        subject = order_subject(agent_id, verb)
        try:
            with producing(f"session.order.{verb.value}", subject) as headers:
                answer = await self._nc.request(
                    subject, order.SerializeToString(), timeout=timeout_seconds, headers=headers
                )
        except nats.errors.NoRespondersError as error:
            raise AgentGone(f"agent {agent_id} does not answer (it is not running)") from error
        except TimeoutError as error:
            raise AgentSilent(
                f"agent {agent_id} did not answer a session {verb.value} within "
                f"{timeout_seconds:g} s"
            ) from error
        reply = queue_pb2.SessionReply()
        try:
            reply.ParseFromString(answer.data)
        except DecodeError as error:
            raise AgentGone(f"agent {agent_id} answered with something else: {error}") from error
        return reply
