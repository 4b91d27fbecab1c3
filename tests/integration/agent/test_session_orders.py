"""Session orders over a real nats-server: answers that do not fit one message, hold probes."""

from typing import cast

import pytest
from nats.aio.client import Client

from farm.queue.v1 import queue_pb2
from farm_agent.sessions.manager import SessionManager, SessionRefused
from farm_agent.sessions.orders import SessionOrders
from farm_agent.traces import SessionTraces
from farm_core.logs import session_id_var
from farm_core.sessions import CloseReason, Refusal, SessionOrder, order_subject
from farm_core.task_errors import ErrorCode
from tests.integration.agent.fakes import FakeUploader, keeper_of

pytestmark = pytest.mark.integration


class OversizedManager:
    """Opens nothing, and names an endpoint longer than a NATS message holds."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.traces = SessionTraces()

    async def open(self, order: queue_pb2.OpenSessionOrder) -> None:
        pass


class OneSessionManager:
    """Holds the session `held_id` of tenant "default" and no other; notes the session id
    its close is logged under, and the openings withdrawn."""

    endpoint = ""

    def __init__(self, held_id: str) -> None:
        self.held_id = held_id
        self.logged_under: list[str] = []
        self.withdrawn: list[tuple[str, str]] = []
        self.traces = SessionTraces()

    def withdraw(self, session_id: str, tenant: str) -> None:
        self.withdrawn.append((session_id, tenant))

    async def close(
        self, session: object, reason: CloseReason, *, ordered: bool = False
    ) -> queue_pb2.SessionClosed:
        self.logged_under.append(session_id_var.get())
        return queue_pb2.SessionClosed(session_id=self.held_id, reason=reason.value)

    async def held(self, session_id: str, tenant: str) -> object:
        if session_id != self.held_id or tenant != "default":
            raise SessionRefused(Refusal.SESSION_NOT_FOUND, f"session {session_id} is not here")
        return object()


async def test_an_answer_too_large_for_nats_is_result_too_large(nc: Client) -> None:
    manager = OversizedManager("x" * (nc.max_payload + 1))
    orders = SessionOrders(
        nc, "agent-big", cast(SessionManager, manager), keeper_of(FakeUploader()), 1000
    )
    await orders.start()
    try:
        answer = await nc.request(
            order_subject("agent-big", SessionOrder.OPEN),
            queue_pb2.OpenSessionOrder(session_id="ses_big").SerializeToString(),
            timeout=10,
        )
    finally:
        await orders.stop()

    reply = queue_pb2.SessionReply.FromString(answer.data)
    assert reply.error.code == ErrorCode.RESULT_TOO_LARGE.value
    assert "a NATS message holds at most" in reply.error.message


@pytest.mark.parametrize(
    ("session_id", "tenant", "error_code"),
    [
        ("ses_0000000000000001", "default", ""),
        ("ses_0000000000000002", "default", Refusal.SESSION_NOT_FOUND.value),
        ("ses_0000000000000001", "stranger", Refusal.SESSION_NOT_FOUND.value),
    ],
)
async def test_a_hold_probe_says_whether_the_tenants_session_is_held_here(
    nc: Client, session_id: str, tenant: str, error_code: str
) -> None:
    manager = OneSessionManager("ses_0000000000000001")
    orders = SessionOrders(
        nc, "agent-hold", cast(SessionManager, manager), keeper_of(FakeUploader()), 1000
    )
    await orders.start()
    try:
        answer = await nc.request(
            order_subject("agent-hold", SessionOrder.HOLD),
            queue_pb2.HoldSessionProbe(session_id=session_id, tenant=tenant).SerializeToString(),
            timeout=10,
        )
    finally:
        await orders.stop()

    assert queue_pb2.SessionReply.FromString(answer.data).error.code == error_code


async def test_an_orders_log_lines_name_its_session(nc: Client) -> None:
    manager = OneSessionManager("ses_0000000000000001")
    orders = SessionOrders(
        nc, "agent-log", cast(SessionManager, manager), keeper_of(FakeUploader()), 1000
    )
    await orders.start()
    try:
        order = queue_pb2.CloseSessionOrder(session_id="ses_0000000000000001", tenant="default")
        answer = await nc.request(
            order_subject("agent-log", SessionOrder.CLOSE), order.SerializeToString(), timeout=10
        )
    finally:
        await orders.stop()

    assert queue_pb2.SessionReply.FromString(answer.data).closed.reason == "CLOSED_BY_USER"
    assert manager.logged_under == ["ses_0000000000000001"]


async def test_a_close_for_a_session_not_open_here_withdraws_its_opening(nc: Client) -> None:
    manager = OneSessionManager("ses_0000000000000001")
    orders = SessionOrders(
        nc, "agent-withdraw", cast(SessionManager, manager), keeper_of(FakeUploader()), 1000
    )
    await orders.start()
    try:
        order = queue_pb2.CloseSessionOrder(session_id="ses_0000000000000002", tenant="default")
        answer = await nc.request(
            order_subject("agent-withdraw", SessionOrder.CLOSE),
            order.SerializeToString(),
            timeout=10,
        )
    finally:
        await orders.stop()

    assert queue_pb2.SessionReply.FromString(answer.data).error.code == Refusal.SESSION_NOT_FOUND
    assert manager.withdrawn == [("ses_0000000000000002", "default")]
