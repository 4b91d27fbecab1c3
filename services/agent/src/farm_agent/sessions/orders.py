"""The scheduler's orders to this agent's sessions: NATS requests on `sessions.<agent_id>.*`.

`open`, `run` and `close` each carry a farm.queue.v1 order and are answered with a
SessionReply: what was done, or an error code and message (a close for a session not
open here also withdraws its opening: see SessionManager.open); `hold` asks whether a
session is still held here (the scheduler asks while a command waits). Orders run side by
side (a browser starting must not hold up another session's command).
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import shorten_text
from farm_agent.errors import TaskFailure
from farm_agent.saved.keeper import CaptureKeeper
from farm_agent.sessions.commands import run_command
from farm_agent.sessions.manager import SessionManager, SessionRefused
from farm_core.logs import log_context
from farm_core.sessions import CloseReason, Refusal, SessionOrder, order_subject
from farm_core.task_errors import ErrorCode

log = logging.getLogger(__name__)

OrderMessage = TypeVar("OrderMessage", bound=Message)
Handler = Callable[[Msg], Awaitable[queue_pb2.SessionReply]]


class SessionOrders:
    """Answers the session orders addressed to this agent."""

    def __init__(
        self,
        connection: Client,
        agent_id: str,
        manager: SessionManager,
        keeper: CaptureKeeper,
        max_text_bytes: int,
    ) -> None:
        self._nc = connection
        self._agent_id = agent_id
        self._manager = manager
        self._keeper = keeper
        self._max_text_bytes = max_text_bytes
        self._subscriptions: list[Subscription] = []
        self._handling: set[asyncio.Task[None]] = set()
        self._traces = manager.traces

    async def start(self) -> None:
        """Subscribes to this agent's order subjects."""
        handlers: dict[SessionOrder, Handler] = {
            SessionOrder.OPEN: self._open,
            SessionOrder.RUN: self._run,
            SessionOrder.CLOSE: self._close,
            SessionOrder.HOLD: self._hold,
        }
        for verb, handler in handlers.items():
            subject = order_subject(self._agent_id, verb)
            self._subscriptions.append(
                await self._nc.subscribe(subject, cb=self._dispatcher(verb, handler))
            )

    async def stop(self) -> None:
        """Takes no more orders; lets orders in hand finish."""
        for subscription in self._subscriptions:
            try:
                await subscription.unsubscribe()
            except nats.errors.Error as error:
                log.debug("unsubscribing from session orders failed: %s", error)
        self._subscriptions.clear()
        if self._handling:
            await asyncio.wait(set(self._handling))

    def _dispatcher(self, verb: SessionOrder, handler: Handler) -> Callable[[Msg], Awaitable[None]]:
        async def dispatch(message: Msg) -> None:
            task = asyncio.get_running_loop().create_task(self._answer(verb, handler, message))
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)

        return dispatch

    async def _answer(self, verb: SessionOrder, handler: Handler, message: Msg) -> None:
        try:
            reply = await handler(message)
        except SessionRefused as refusal:
            reply = _error(refusal.code, str(refusal))
            if refusal.closed is not None:
                reply.closed.CopyFrom(refusal.closed)
        except TaskFailure as failure:
            reply = queue_pb2.SessionReply(error=failure.to_proto())
        except DecodeError as error:
            reply = _error(
                Refusal.INVALID_ORDER, f"the {verb} order is not a queue message: {error}"
            )
        except Exception as error:
            log.exception("session order %s failed", verb)
            reply = _error(Refusal.INTERNAL, f"{type(error).__name__}: {error}")
        if not message.reply:
            return
        try:
            await message.respond(self._fitting(reply).SerializeToString())
        except nats.errors.Error as error:
            log.warning("could not answer a session %s order: %s", verb, error)

    def _fitting(self, reply: queue_pb2.SessionReply) -> queue_pb2.SessionReply:
        """The reply cut to fit one NATS message, or RESULT_TOO_LARGE in its place.

        Only a content action's text is cut: its artifact keeps all of it.
        """
        size = reply.ByteSize()
        if size <= self._nc.max_payload:
            return reply
        whole_kept = any(
            ref.kind == tasks_pb2.ARTIFACT_KIND_CONTENT for ref in reply.result.artifacts
        )
        if whole_kept and shorten_text(reply.result, size - self._nc.max_payload):
            return reply
        failure = TaskFailure(
            ErrorCode.RESULT_TOO_LARGE,
            f"the result is {size} bytes; a NATS message holds at most {self._nc.max_payload}",
        )
        return queue_pb2.SessionReply(error=failure.to_proto())

    async def _open(self, message: Msg) -> queue_pb2.SessionReply:
        order = _parse(queue_pb2.OpenSessionOrder(), message.data)
        with _logged(order.session_id), self._traces.opening(order.session_id, message):
            try:
                await self._manager.open(order)
            except (SessionRefused, TaskFailure) as error:
                log.warning("session %s did not open: %s", order.session_id, error)
                raise
        return queue_pb2.SessionReply(endpoint=self._manager.endpoint)

    async def _run(self, message: Msg) -> queue_pb2.SessionReply:
        order = _parse(queue_pb2.SessionCommandOrder(), message.data)
        with _logged(order.session_id):
            session = await self._manager.held(order.session_id, order.tenant)
            try:
                with self._traces.ordered(
                    "session.command", order.session_id, message, session.egress
                ):
                    result = await run_command(
                        session, order.command, self._keeper, self._max_text_bytes, order.grant
                    )
            except TaskFailure as failure:
                if failure.code is ErrorCode.BROWSER_CRASHED:
                    await self._manager.close(session, CloseReason.BROWSER_CRASHED)
                raise
        return queue_pb2.SessionReply(result=result)

    async def _close(self, message: Msg) -> queue_pb2.SessionReply:
        order = _parse(queue_pb2.CloseSessionOrder(), message.data)
        try:
            reason = CloseReason(order.reason or CloseReason.CLOSED_BY_USER)
        except ValueError:
            raise SessionRefused(
                Refusal.INVALID_ORDER, f"no such close reason: {order.reason}"
            ) from None
        try:
            session = await self._manager.held(order.session_id, order.tenant)
        except SessionRefused as refusal:
            if refusal.closed is None:
                # Not open here (yet): the scheduler may have given up on its opening,
                # which must then not leave a browser open.
                self._manager.withdraw(order.session_id, order.tenant)
                raise
            # Closed already (idle, lifetime...): that close is the answer.
            return queue_pb2.SessionReply(closed=refusal.closed)
        with (
            _logged(order.session_id),
            self._traces.ordered("session.close", order.session_id, message),
        ):
            closed = await self._manager.close(session, reason, ordered=True)
        return queue_pb2.SessionReply(closed=closed)

    async def _hold(self, message: Msg) -> queue_pb2.SessionReply:
        probe = _parse(queue_pb2.HoldSessionProbe(), message.data)
        await self._manager.held(probe.session_id, probe.tenant)
        return queue_pb2.SessionReply()


def _parse(message: OrderMessage, data: bytes) -> OrderMessage:
    message.ParseFromString(data)
    return message


def _logged(session_id: str) -> contextlib.AbstractContextManager[None]:
    """Lines logged while an order is handled name its session."""
    return log_context(session_id=session_id)


def _error(code: Refusal, message: str) -> queue_pb2.SessionReply:
    return queue_pb2.SessionReply(error=tasks_pb2.TaskError(code=code, message=message))
