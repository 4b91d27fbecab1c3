"""The scheduler's side of the session orders: NATS requests to the agent that holds a session."""

import asyncio
import logging

import nats.errors
from google.protobuf.message import DecodeError
from nats.aio.client import Client
from nats.aio.msg import Msg

from farm.queue.v1 import queue_pb2
from farm_core.nats_size import header_bytes
from farm_core.sessions import CloseReason, Refusal, SessionOrder, order_subject
from farm_core.trace_context import producing

log = logging.getLogger(__name__)

HOLD_PROBE_SECONDS = 1.0
"""While a command waits for its answer, how often its agent is asked whether it
still holds the session (and how long each probe waits), unless told otherwise."""


OPEN_ANSWER_MARGIN_SECONDS = 5.0
"""How much longer than the open order's answer_within_ms the scheduler waits for the
answer: the agent's bound, measured from when the order arrives, always ends first, and
an agent past it closes the browser it opened instead of answering that it is open."""


SessionOrderMessage = (
    queue_pb2.OpenSessionOrder
    | queue_pb2.SessionCommandOrder
    | queue_pb2.CloseSessionOrder
    | queue_pb2.HoldSessionProbe
)
"""What the scheduler sends an agent about one session."""


def order_attributes(order: SessionOrderMessage) -> dict[str, str]:
    """The attributes of a `session.order.*` span: the session it is about."""
    return {"farm.session_id": order.session_id}


NO_RESPONDERS_RETRY_SECONDS = 0.25
"""How long an order that found nobody listening waits before it is sent once more."""


class AgentGone(Exception):
    """Nobody listens on the agent's subject: it is not running (or not reachable)."""


class AgentSilent(Exception):
    """The agent took the order but did not answer in time."""


class AgentGarbled(Exception):
    """The agent answered with something that is not a SessionReply; it may still be alive."""


class OrderTooLarge(Exception):
    """The order does not fit one NATS message: nothing was sent."""

    def __init__(self, order_bytes: int, max_payload: int) -> None:
        super().__init__(
            f"the order is {order_bytes} bytes; a NATS message holds at most {max_payload}"
        )
        self.order_bytes = order_bytes
        self.max_payload = max_payload


class OrderNotSent(Exception):
    """The scheduler's own NATS connection would not take the order; the agent was not asked.

    Closed, draining, or reconnecting with its outgoing buffer full.
    """


def close_order(session_id: str, tenant: str, reason: CloseReason) -> queue_pb2.CloseSessionOrder:
    """The order that closes a session's browser on its agent, saying why."""
    return queue_pb2.CloseSessionOrder(session_id=session_id, tenant=tenant, reason=reason.value)


class AgentOrders:
    """Sends open, run and close orders and reads the agents' SessionReplies."""

    def __init__(
        self,
        nc: Client,
        open_timeout_seconds: float,
        close_timeout_seconds: float,
        hold_probe_seconds: float = HOLD_PROBE_SECONDS,
    ):
        self._nc = nc
        self._open_timeout_seconds = open_timeout_seconds
        self._close_timeout_seconds = close_timeout_seconds
        self._hold_probe_seconds = hold_probe_seconds

    async def open(
        self, agent_id: str, order: queue_pb2.OpenSessionOrder
    ) -> queue_pb2.SessionReply:
        """Asks `agent_id` to open a session's browser within the open timeout.

        The order carries that bound (answer_within_ms); the answer is awaited a margin
        longer, so that a browser the agent opens after the bound is closed by the agent.
        """
        order.answer_within_ms = round(self._open_timeout_seconds * 1000)
        return await self._ask(
            agent_id,
            SessionOrder.OPEN,
            order,
            self._open_timeout_seconds + OPEN_ANSWER_MARGIN_SECONDS,
        )

    async def withdraw(self, agent_id: str, order: queue_pb2.OpenSessionOrder) -> None:
        """Tells `agent_id` that the session it was ordered to open is not wanted any more.

        A close (OPEN_ABANDONED), with no answer awaited (the caller may be cancelled):
        the agent closes the session if it opened it, or closes its browser when the
        opening ends. Best effort: an agent that misses it keeps the browser until the
        scheduler's sweep finds it unclaimed (SessionCloser.sweep).
        """
        await self.tell_close(
            agent_id, close_order(order.session_id, order.tenant, CloseReason.OPEN_ABANDONED)
        )

    async def tell_close(self, agent_id: str, order: queue_pb2.CloseSessionOrder) -> None:
        """Sends `agent_id` a close order and awaits no answer; a failure to send is logged.

        The agent's SessionClosed event, if it held the session, records the close.
        """
        subject = order_subject(agent_id, SessionOrder.CLOSE)
        try:
            with producing(
                f"session.order.{SessionOrder.CLOSE.value}",
                subject,
                attributes=order_attributes(order),
            ) as headers:
                await self._nc.publish(subject, order.SerializeToString(), headers=headers)
        except nats.errors.Error as error:
            log.warning(
                "session %s: could not send agent %s its close (%s): %s",
                order.session_id,
                agent_id,
                order.reason,
                error,
            )

    async def run(
        self, agent_id: str, order: queue_pb2.SessionCommandOrder, timeout_seconds: float
    ) -> queue_pb2.SessionReply:
        """Asks the agent holding the session to run a command; waits up to the timeout.

        A command sent as its agent died is lost with it: while the answer is awaited,
        the agent is asked every `hold_probe_seconds` whether it still holds the session.
        Nobody listening raises AgentGone; an agent that no longer holds it (restarted
        under the same id) answers SESSION_NOT_FOUND, which becomes the answer.
        """
        answer = asyncio.ensure_future(
            self._ask(agent_id, SessionOrder.RUN, order, timeout_seconds)
        )
        probe = queue_pb2.HoldSessionProbe(session_id=order.session_id, tenant=order.tenant)
        try:
            while not (await asyncio.wait({answer}, timeout=self._hold_probe_seconds))[0]:
                not_held = await self._not_held(agent_id, probe)
                if not_held is None:
                    continue
                # The command may have closed the session itself: its answer says how.
                if (await asyncio.wait({answer}, timeout=self._hold_probe_seconds))[0]:
                    break
                return not_held
            return answer.result()
        finally:
            answer.cancel()

    async def close(
        self, agent_id: str, order: queue_pb2.CloseSessionOrder
    ) -> queue_pb2.SessionReply:
        """Asks the agent holding the session to close it."""
        return await self._ask(agent_id, SessionOrder.CLOSE, order, self._close_timeout_seconds)

    async def _not_held(
        self, agent_id: str, probe: queue_pb2.HoldSessionProbe
    ) -> queue_pb2.SessionReply | None:
        """The agent's SESSION_NOT_FOUND reply if it no longer holds the session, else None.

        None also when it is too busy to say: the command's own timeout still stands.
        """
        try:
            reply = await self._ask(agent_id, SessionOrder.HOLD, probe, self._hold_probe_seconds)
        except (AgentSilent, AgentGarbled):
            return None
        if reply.HasField("error") and reply.error.code == Refusal.SESSION_NOT_FOUND:
            return reply
        return None

    async def _request_heard(
        self, subject: str, verb: SessionOrder, order: SessionOrderMessage, timeout_seconds: float
    ) -> Msg:
        """The answer to `order`, sent once more if nobody listened the first time.

        Nobody received it then, so it may go again: an agent whose NATS connection
        just came back subscribes again a moment later.
        """
        try:
            return await self._request(subject, verb, order, timeout_seconds)
        except nats.errors.NoRespondersError:
            log.info(
                "nobody listened to %s; sending it once more in %g s",
                subject,
                NO_RESPONDERS_RETRY_SECONDS,
            )
            await asyncio.sleep(NO_RESPONDERS_RETRY_SECONDS)
        return await self._request(subject, verb, order, timeout_seconds)

    async def _request(
        self, subject: str, verb: SessionOrder, order: SessionOrderMessage, timeout_seconds: float
    ) -> Msg:
        payload = order.SerializeToString()
        with producing(
            f"session.order.{verb.value}", subject, attributes=order_attributes(order)
        ) as headers:
            # The server counts headers in its max_payload and drops the connection of a
            # client that sends more; the client checks the payload alone.
            message_bytes = len(payload) + header_bytes(headers)
            if message_bytes > self._nc.max_payload:
                raise OrderTooLarge(message_bytes, self._nc.max_payload)
            return await self._nc.request(
                subject, payload, timeout=timeout_seconds, headers=headers
            )

    async def _ask(
        self, agent_id: str, verb: SessionOrder, order: SessionOrderMessage, timeout_seconds: float
    ) -> queue_pb2.SessionReply:
        subject = order_subject(agent_id, verb)
        reconnects = self._nc.stats["reconnects"]
        try:
            answer = await self._request_heard(subject, verb, order, timeout_seconds)
        except nats.errors.NoRespondersError as error:
            raise AgentGone(f"agent {agent_id} does not answer (it is not running)") from error
        except TimeoutError as error:
            silence = (
                f"agent {agent_id} did not answer a session {verb.value} within "
                f"{timeout_seconds:g} s"
            )
            if not self._nc.is_connected or self._nc.stats["reconnects"] != reconnects:
                # NATS, not the agent, is then the likelier culprit: say so.
                silence += (
                    ", and the scheduler's NATS connection was lost meanwhile (NATS stopped, "
                    "stalled or out of reach): the order or its answer may not have got "
                    "through, the agent may be well, and the command may have run"
                )
            raise AgentSilent(silence) from error
        except nats.errors.Error as error:
            raise OrderNotSent(
                f"the session {verb.value} order for agent {agent_id} could not be sent: "
                f"{_nats_fault(error)}"
            ) from error
        reply = queue_pb2.SessionReply()
        try:
            reply.ParseFromString(answer.data)
        except DecodeError as error:
            raise AgentGarbled(
                f"agent {agent_id} answered the session {verb.value} order with something "
                f"that is not a SessionReply ({len(answer.data)} bytes: {error})"
            ) from error
        return reply


def _nats_fault(error: nats.errors.Error) -> str:
    """What is wrong with this scheduler's NATS connection, in a caller's words."""
    if isinstance(error, nats.errors.ConnectionClosedError):
        return "the scheduler's NATS connection is closed"
    if isinstance(error, nats.errors.ConnectionDrainingError):
        return "the scheduler is shutting down"
    if isinstance(error, nats.errors.OutboundBufferLimitError):
        return "the scheduler is reconnecting to NATS"
    return f"NATS: {error}"
