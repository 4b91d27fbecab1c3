"""GetFleetStatus and the fleet gauges: agents, queues, recent tasks, breakers, dead letters."""

import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError
from prometheus_client import REGISTRY

from farm.admin.v1 import admin_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.kv import breakers_bucket
from farm_agent.limits.circuit import Circuit, CircuitState
from farm_core.breakers import BREAKERS_BUCKET
from farm_core.db import utcnow
from farm_core.queue import TASK_STREAM, Priority, consumer_name, task_subject
from farm_core.timestamps import to_timestamp
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.scheduler.admin_calls import ADMIN, operator
from tests.integration.scheduler.agent_side import RPC_TIMEOUT, Queue, beat
from tests.integration.scheduler.conftest import Scheduler, StartScheduler, rpc_error, until

pytestmark = pytest.mark.integration

LOST_AFTER_SECONDS = 15.0


@pytest.fixture
async def breakers(queue: Queue) -> AsyncIterator[None]:
    """The breakers' bucket starts and ends empty."""
    with contextlib.suppress(NotFoundError):
        await queue.js.delete_stream(f"KV_{BREAKERS_BUCKET}")
    yield
    with contextlib.suppress(NotFoundError):
        await queue.js.delete_stream(f"KV_{BREAKERS_BUCKET}")


@pytest.fixture
async def scheduler(start_scheduler: StartScheduler) -> Scheduler:
    """A scheduler whose gauges are read often."""
    return await start_scheduler(
        fleet_gauges_interval_seconds=0.2, session_agent_lost_seconds=LOST_AFTER_SECONDS
    )


async def status(scheduler: Scheduler, window_minutes: int = 0) -> admin_pb2.FleetStatus:
    fleet_status: admin_pb2.FleetStatus = await scheduler.admin.GetFleetStatus(
        admin_pb2.GetFleetStatusRequest(window_minutes=window_minutes),
        metadata=operator(scheduler),
        timeout=RPC_TIMEOUT,
    )
    return fleet_status


async def fail(scheduler: Scheduler, queue: Queue, task_id: str) -> None:
    await queue.report(task_id, tasks_pb2.TASK_STATUS_RUNNING)
    await until(scheduler, task_id, tasks_pb2.TASK_STATUS_RUNNING, 1)
    error = tasks_pb2.TaskError(code="BLOCKED_URL")
    await queue.report(task_id, tasks_pb2.TASK_STATUS_FAILED, error=error)
    await until(scheduler, task_id, tasks_pb2.TASK_STATUS_FAILED, 1)


async def hold_one(queue: Queue) -> None:
    """Takes one normal task of no region as an agent would, without acking it."""
    name = consumer_name("any", Priority.NORMAL)
    await queue.js.add_consumer(
        TASK_STREAM,
        ConsumerConfig(
            name=name,
            durable_name=name,
            filter_subject=task_subject("", Priority.NORMAL),
            ack_policy=AckPolicy.EXPLICIT,
        ),
    )
    work = await queue.js.pull_subscribe_bind(durable=name, stream=TASK_STREAM)
    [_] = await work.fetch(1, timeout=RPC_TIMEOUT)


async def put_breakers(queue: Queue, opened_at: float) -> None:
    bucket = await breakers_bucket(queue.js)
    down = Circuit(CircuitState.OPEN, failures=5, opened_at=opened_at)
    await bucket.put("down.example=443", down.to_bytes())
    await bucket.put("flaky.example", Circuit(failures=2).to_bytes())


async def test_fleet_status_shows_agents_queues_tasks_breakers_and_dead_letters(
    scheduler: Scheduler, queue: Queue, breakers: None
) -> None:
    await beat(queue, "eu-1", region="eu", version="1.2.3", browsers=2, busy_places=1)
    late = to_timestamp(utcnow() - dt.timedelta(seconds=LOST_AFTER_SECONDS + 5))
    await beat(queue, "gone-1", heartbeat_time=late)
    queued = [await scheduler.create() for _ in range(3)]
    await scheduler.create(priority=tasks_pb2.PRIORITY_HIGH)
    await hold_one(queue)
    await fail(scheduler, queue, queued[0].id)
    opened_at = time.time() - 30
    await put_breakers(queue, opened_at)

    fleet = await status(scheduler)

    assert [agent.id for agent in fleet.agents] == ["eu-1", "gone-1"]
    eu, gone = fleet.agents
    assert (eu.region, eu.version, eu.browsers) == ("eu", "1.2.3", 2)
    assert (eu.busy_places, eu.free_places, eu.lost) == (1, 1, False)
    assert gone.lost
    queues = {(q.region, q.priority): q for q in fleet.queues}
    assert set(queues) == {("any", tasks_pb2.PRIORITY_HIGH), ("any", tasks_pb2.PRIORITY_NORMAL)}
    normal = queues["any", tasks_pb2.PRIORITY_NORMAL]
    assert (normal.pending, normal.in_flight) == (2, 1)
    assert normal.oldest_pending_age_seconds > 0
    high = queues["any", tasks_pb2.PRIORITY_HIGH]
    assert (high.pending, high.in_flight) == (1, 0)
    assert high.oldest_pending_age_seconds > 0
    assert (fleet.tasks.window_minutes, fleet.tasks.queued, fleet.tasks.failed) == (15, 3, 1)
    assert (fleet.tasks.running, fleet.tasks.succeeded, fleet.tasks.cancelled) == (0, 0, 0)
    assert (fleet.dead_letters.total, fleet.dead_letters.recent) == (1, 1)
    assert fleet.open_breaker_count == 1
    [breaker] = fleet.open_breakers
    assert (breaker.host, breaker.state, breaker.failures) == ("down.example:443", "open", 5)
    assert breaker.open_time.ToDatetime(dt.UTC).timestamp() == pytest.approx(opened_at, abs=1)
    assert fleet.open_sessions == 0


async def test_the_fleet_gauges_show_the_same_without_hosts_or_ids(
    scheduler: Scheduler, queue: Queue, breakers: None
) -> None:
    await beat(queue, "eu-1", region="eu", busy_places=2)
    await scheduler.create()
    await put_breakers(queue, time.time())

    def sample(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    def shown() -> bool:
        # One refresh may read the breakers before they were put and the queue after
        # the create: both must have been seen.
        queued = sample("farm_queue_pending_messages", region="any", priority="normal")
        return queued == 1 and sample("farm_breakers", state="open") == 1

    await assert_eventually(shown, message="the gauges never showed the task and the breaker")
    assert sample("farm_agents", region="eu", state="ready") == 1
    # A region with a queue but no agent of its own shows, with none.
    assert sample("farm_agents", region="any", state="ready") == 0
    assert sample("farm_agent_places", region="eu", state="busy") == 2
    assert sample("farm_agent_places", region="eu", state="free") == 0
    oldest_age = sample("farm_queue_oldest_pending_age_seconds", region="any", priority="normal")
    assert oldest_age is not None and oldest_age > 0
    assert sample("farm_tasks", status="queued") == 1
    assert sample("farm_breakers", state="open") == 1
    assert sample("farm_breakers", state="closed") == 1
    assert sample("farm_dead_letter_tasks") == 0
    assert sample("farm_sessions_open") == 0


async def test_fleet_status_is_for_operators_with_a_window_of_one_minute_to_a_day(
    scheduler: Scheduler,
) -> None:
    tenant_admin = scheduler.auth(ADMIN)
    refused = await rpc_error(
        scheduler.admin.GetFleetStatus(
            admin_pb2.GetFleetStatusRequest(), metadata=tenant_admin, timeout=RPC_TIMEOUT
        )
    )
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (await status(scheduler, window_minutes=1440)).tasks.window_minutes == 1440
    for minutes in (-1, 1441):
        bad = await rpc_error(status(scheduler, window_minutes=minutes))
        assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (bad.details() or "").startswith("windowMinutes: ")


async def test_fleet_status_with_nats_not_answering_names_nats_and_its_address(
    fresh_nats_server: NatsServer, start_scheduler: StartScheduler
) -> None:
    # The server first: it is stopped only after the scheduler.
    scheduler = await start_scheduler(
        NATS_URL=fresh_nats_server.url, FARM_NATS_REQUEST_TIMEOUT_SECONDS=1
    )
    await status(scheduler)
    # A stalled server (SIGSTOP, a full disk) keeps the connection and answers nothing.
    async with fresh_nats_server.stalled():
        failed = await rpc_error(status(scheduler))

    assert failed.code() == grpc.StatusCode.UNAVAILABLE
    assert failed.details() == (
        f"NATS at {fresh_nats_server.url} is not answering (timeout): the agents' heartbeats, "
        "the task queues and the circuit breakers cannot be read"
    )
