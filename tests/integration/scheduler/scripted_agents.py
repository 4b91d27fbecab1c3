"""Scripted agents and the scheduler's SessionService as one tenant, for the session tests.

A scripted agent beats its heartbeat into `farm_agents` and answers the orders on
`sessions.<agent_id>.*` as a test tells it; `scheduler` and `agents` are fixtures a
test module takes by importing them.
"""

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from farm.queue.v1 import queue_pb2
from farm.sessions.v1 import sessions_pb2, sessions_pb2_grpc
from farm.tasks.v1 import tasks_pb2
from farm_agent.sessions.notices import publish_closed
from farm_core.quotas import TenantQuotas
from farm_core.sessions import SessionOrder
from farm_core.shared_buckets import agents_bucket
from farm_core.timestamps import to_timestamp
from tests.integration.scheduler.agent_side import RPC_TIMEOUT, Queue
from tests.integration.scheduler.conftest import Metadata, Scheduler, StartScheduler, token

SESSIONS = ("sessions",)
Answer = Callable[[SessionOrder, bytes], queue_pb2.SessionReply | bytes]
"""An agent's answer to an order: a SessionReply, or raw bytes (a garbled answer)."""


def opened(_: SessionOrder, __: bytes) -> queue_pb2.SessionReply:
    """An agent that opens every session and runs every command."""
    return queue_pb2.SessionReply(
        endpoint="127.0.0.1:9", result=tasks_pb2.TaskResult(title="Scripted page")
    )


def refused(code: str, message: str = "") -> Answer:
    """An agent's refusal with `code`; its message `message`, else "<code>!"."""

    def answer(_: SessionOrder, __: bytes) -> queue_pb2.SessionReply:
        error = tasks_pb2.TaskError(code=code, message=message or f"{code}!")
        return queue_pb2.SessionReply(error=error)

    return answer


def order_verb(message: Msg) -> SessionOrder:
    """The order a message on `sessions.<agent_id>.<verb>` gives."""
    return SessionOrder(message.subject.rsplit(".", 1)[1])


@dataclass
class ScriptedAgent:
    """A stand-in agent: a heartbeat and answers to its session orders."""

    queue: Queue
    agent_id: str
    concurrency: int = 2
    region: str = ""
    answer: Answer = opened
    orders: list[tuple[SessionOrder, bytes]] = field(default_factory=list)
    session_ids: list[str] = field(default_factory=list)
    _subscription: Subscription | None = None

    async def start(self) -> "ScriptedAgent":
        await self.beat()
        self._subscription = await self.queue.nc.subscribe(
            f"sessions.{self.agent_id}.*", cb=self._on_order
        )
        return self

    async def beat(self, age_seconds: float = 0.0) -> None:
        heartbeat = queue_pb2.AgentHeartbeat(
            agent_id=self.agent_id,
            region=self.region,
            concurrency=self.concurrency,
            session_ids=self.session_ids,
            session_endpoint="127.0.0.1:9",
            heartbeat_time=to_timestamp(
                dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age_seconds)
            ),
        )
        bucket = await agents_bucket(self.queue.js)
        await bucket.put(self.agent_id, heartbeat.SerializeToString())

    async def stop_answering(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
        await self.queue.nc.flush()

    def closed(self, session_id: str, tenant: str, reason: str) -> queue_pb2.SessionClosed:
        """This agent's SessionClosed of the session, as the real agent makes one."""
        closed = queue_pb2.SessionClosed(
            event_id=uuid.uuid4().hex,
            session_id=session_id,
            tenant=tenant,
            agent_id=self.agent_id,
            reason=reason,
        )
        closed.time.GetCurrentTime()
        return closed

    async def publish_closed(self, closed: queue_pb2.SessionClosed) -> None:
        """Publishes `closed` as its event, as the real agent does (farm_agent's notices)."""
        await publish_closed(self.queue.js, closed)

    def note(self, message: Msg) -> SessionOrder:
        """Notes the order `message` carries (in `orders`); its verb."""
        verb = order_verb(message)
        self.orders.append((verb, message.data))
        return verb

    async def _on_order(self, message: Msg) -> None:
        verb = self.note(message)
        if verb is SessionOrder.OPEN:
            self.session_ids.append(queue_pb2.OpenSessionOrder.FromString(message.data).session_id)
        reply = self.answer(verb, message.data)
        await message.respond(reply if isinstance(reply, bytes) else reply.SerializeToString())


@dataclass
class Sessions:
    """SessionService of the scheduler, as one tenant."""

    stub: sessions_pb2_grpc.SessionServiceStub
    metadata: Metadata

    async def create(self, **spec: Any) -> sessions_pb2.Session:
        request = sessions_pb2.CreateSessionRequest(spec=sessions_pb2.SessionSpec(**spec))
        session: sessions_pb2.Session = await self.stub.CreateSession(
            request, metadata=self.metadata, timeout=RPC_TIMEOUT
        )
        return session

    async def get(self, session_id: str) -> sessions_pb2.Session:
        request = sessions_pb2.GetSessionRequest(id=session_id)
        session: sessions_pb2.Session = await self.stub.GetSession(
            request, metadata=self.metadata, timeout=RPC_TIMEOUT
        )
        return session

    async def run(self, session_id: str, **command: Any) -> tasks_pb2.TaskResult:
        request = sessions_pb2.RunSessionCommandRequest(
            id=session_id, command=sessions_pb2.SessionCommand(**command)
        )
        task_result: tasks_pb2.TaskResult = await self.stub.RunSessionCommand(
            request, metadata=self.metadata, timeout=RPC_TIMEOUT
        )
        return task_result

    async def close(self, session_id: str) -> sessions_pb2.Session:
        request = sessions_pb2.CloseSessionRequest(id=session_id)
        session: sessions_pb2.Session = await self.stub.CloseSession(
            request, metadata=self.metadata, timeout=RPC_TIMEOUT
        )
        return session

    async def listed(self) -> list[str]:
        response = await self.stub.ListSessions(
            sessions_pb2.ListSessionsRequest(), metadata=self.metadata, timeout=RPC_TIMEOUT
        )
        return [session.id for session in response.sessions]


@pytest.fixture
async def scheduler(start_scheduler: StartScheduler) -> Scheduler:
    return await start_scheduler(
        session_agent_lost_seconds=1.5,
        session_sweep_interval_seconds=0.2,
        session_open_timeout_seconds=2,
        session_close_timeout_seconds=2,
    )


AgentsFixture = Callable[..., asyncio.Future["ScriptedAgent"]]
"""Starts a scripted agent of the given id (the `agents` fixture)."""


def sessions_of(scheduler: Scheduler, quotas: TenantQuotas | None = None) -> Sessions:
    return Sessions(
        sessions_pb2_grpc.SessionServiceStub(scheduler.channel),
        token(scheduler.tenant, *SESSIONS, "script", quotas=quotas),
    )


@pytest.fixture
async def agents(queue: Queue) -> AsyncIterator[Callable[..., asyncio.Future[ScriptedAgent]]]:
    started: list[ScriptedAgent] = []

    def start(agent_id: str, **fields: object) -> asyncio.Future[ScriptedAgent]:
        agent = ScriptedAgent(queue, agent_id, **fields)  # type: ignore[arg-type]
        started.append(agent)
        return asyncio.ensure_future(agent.start())

    yield start
    for agent in started:
        await agent.stop_answering()
