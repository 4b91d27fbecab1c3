"""Session orders over a real nats-server: answers that do not fit one message."""

from collections.abc import AsyncIterator
from typing import Any, cast

import nats
import pytest
from nats.aio.client import Client

from farm.queue.v1 import queue_pb2
from farm_agent.sessions.manager import SessionManager
from farm_agent.sessions.orders import SessionOrders
from farm_core.sessions import SessionOrder, order_subject
from farm_core.task_errors import ErrorCode
from tests.integration.agent.fakes import FakeUploader, keeper_of

pytestmark = pytest.mark.integration


class OversizedManager:
    """Opens nothing, and names an endpoint longer than a NATS message holds."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    async def open(self, order: queue_pb2.OpenSessionOrder) -> None:
        pass


@pytest.fixture
async def nc(nats_server: Any) -> AsyncIterator[Client]:
    client = await nats.connect(nats_server.url)
    try:
        yield client
    finally:
        await client.drain()


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
