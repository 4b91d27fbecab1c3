"""The scheduler run in-process against the real nats-server, on SQLite or PostgreSQL.

The test plays the agents: it pulls WorkItems from FARM_TASKS and publishes
AgentEvents on `events.tasks.<id>.<agent_id>`, as farm_agent does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import nats
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import select, update

from farm.admin.v1 import admin_pb2_grpc
from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_core.identity import IDENTITY_HEADER, Identity
from farm_core.quotas import TenantQuotas
from farm_scheduler.server import SchedulerService
from farm_scheduler.settings import SchedulerSettings
from farm_scheduler.store import TaskStore
from farm_scheduler.task_rows import tasks
from farm_scheduler.validation import validate_spec
from tests.conftest import NatsServer
from tests.helpers import (
    TEST_GRANT_KEY,
    TEST_PUBLIC_KEY,
    TEST_SIGNER,
    assert_eventually,
    serving,
    task_spec,
)
from tests.integration.scheduler.agent_side import RPC_TIMEOUT, Queue, reset_streams

WRITE = ("tasks.write", "tasks.read")

QUEUED = tasks_pb2.TASK_STATUS_QUEUED
RUNNING = tasks_pb2.TASK_STATUS_RUNNING
SUCCEEDED = tasks_pb2.TASK_STATUS_SUCCEEDED
FAILED = tasks_pb2.TASK_STATUS_FAILED
CANCELLED = tasks_pb2.TASK_STATUS_CANCELLED
TIMEOUT = tasks_pb2.TaskError(code="TIMEOUT", message="navigation timed out", retryable=True)
"""A retryable failure, as an agent reports a navigation that timed out."""

Metadata = tuple[tuple[str, str], ...]


def token(
    tenant: str, *scopes: str, operator: bool = False, quotas: TenantQuotas | None = None
) -> Metadata:
    """Call metadata vouching for a key of `tenant` with `scopes` (of the bootstrap tenant
    if `operator`) and the tenant's `quotas`."""
    identity = Identity(
        tenant, f"key_{tenant}", frozenset(scopes), operator=operator, quotas=quotas
    )
    return ((IDENTITY_HEADER, TEST_SIGNER.encode(identity)),)


@pytest.fixture
async def queue(nats_server: NatsServer) -> AsyncIterator[Queue]:
    """The session's nats-server with fresh streams (deleted again afterwards)."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await reset_streams(js)
    try:
        yield Queue(nc, js)
    finally:
        await reset_streams(js)
        await nc.drain()


@dataclass
class Scheduler:
    """A running scheduler, a stub to call it, and the tenant the test acts as."""

    service: SchedulerService
    settings: SchedulerSettings
    tasks: tasks_pb2_grpc.TaskServiceAsyncStub
    admin: admin_pb2_grpc.AdminServiceAsyncStub
    tenant: str
    channel: grpc.aio.Channel
    scopes: tuple[str, ...] = WRITE

    def auth(
        self,
        *scopes: str,
        tenant: str | None = None,
        operator: bool = False,
        quotas: TenantQuotas | None = None,
    ) -> Metadata:
        """Metadata of the test's tenant (or `tenant`) with `scopes` (default: read, write)."""
        return token(
            tenant or self.tenant, *(scopes or self.scopes), operator=operator, quotas=quotas
        )

    async def create(
        self, quotas: TenantQuotas | None = None, metadata: Metadata | None = None, **fields: Any
    ) -> tasks_pb2.Task:
        """CreateTask of task_spec(**fields), by a tenant with `quotas` (or with `metadata`)."""
        task: tasks_pb2.Task = await self.tasks.CreateTask(
            tasks_pb2.CreateTaskRequest(spec=task_spec(**fields)),
            metadata=metadata or self.auth(quotas=quotas),
            timeout=RPC_TIMEOUT,
        )
        return task

    async def create_batch(
        self, specs: list[tasks_pb2.TaskSpec], metadata: Metadata | None = None
    ) -> tasks_pb2.CreateTasksResponse:
        """CreateTasks of `specs` as the test's tenant (or with `metadata`)."""
        response: tasks_pb2.CreateTasksResponse = await self.tasks.CreateTasks(
            tasks_pb2.CreateTasksRequest(requests=specs),
            metadata=metadata or self.auth(),
            timeout=RPC_TIMEOUT,
        )
        return response

    async def run(self, **fields: Any) -> tasks_pb2.Task:
        """RunTask of task_spec(**fields) as the test's tenant."""
        task: tasks_pb2.Task = await self.tasks.RunTask(
            tasks_pb2.RunTaskRequest(spec=task_spec(**fields)),
            metadata=self.auth(),
            timeout=RPC_TIMEOUT,
        )
        return task

    async def create_at_once(self, count: int, quotas: TenantQuotas) -> list[grpc.StatusCode]:
        """Sends `count` CreateTasks concurrently; each one's status code."""

        async def one() -> grpc.StatusCode:
            try:
                await self.create(quotas)
            except grpc.aio.AioRpcError as error:
                return error.code()
            return grpc.StatusCode.OK

        return list(await asyncio.gather(*(one() for _ in range(count))))

    async def create_mixed_at_once(self, quotas: TenantQuotas) -> int:
        """Ten CreateTask and four CreateTasks of three, all at once; how many tasks were made."""

        async def single() -> int:
            try:
                await self.create(quotas)
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
                return 0
            return 1

        async def batch() -> int:
            answer = await self.create_batch(
                [stored_spec() for _ in range(3)], self.auth(quotas=quotas)
            )
            return len(answer.tasks)

        made = await asyncio.gather(*(single() for _ in range(10)), *(batch() for _ in range(4)))
        return sum(made)

    async def get(self, task_id: str, metadata: Metadata | None = None) -> tasks_pb2.Task:
        """GetTask as the test's tenant (or with `metadata`)."""
        task: tasks_pb2.Task = await self.tasks.GetTask(
            tasks_pb2.GetTaskRequest(id=task_id),
            metadata=metadata or self.auth(),
            timeout=RPC_TIMEOUT,
        )
        return task

    async def cancel(self, task_id: str, metadata: Metadata | None = None) -> tasks_pb2.Task:
        """CancelTask as the test's tenant (or with `metadata`)."""
        task: tasks_pb2.Task = await self.tasks.CancelTask(
            tasks_pb2.CancelTaskRequest(id=task_id),
            metadata=metadata or self.auth(),
            timeout=RPC_TIMEOUT,
        )
        return task

    def watch(
        self, task_id: str, metadata: Metadata | None = None
    ) -> AsyncIterator[tasks_pb2.TaskEvent]:
        """WatchTask's events as the test's tenant (or with `metadata`)."""
        return aiter(
            self.tasks.WatchTask(
                tasks_pb2.WatchTaskRequest(id=task_id),
                metadata=metadata or self.auth(),
                timeout=RPC_TIMEOUT,
            )
        )

    async def list_tasks(
        self, metadata: Metadata | None = None, **request: Any
    ) -> tasks_pb2.ListTasksResponse:
        """ListTasks of `request`'s fields as the test's tenant (or with `metadata`)."""
        response: tasks_pb2.ListTasksResponse = await self.tasks.ListTasks(
            tasks_pb2.ListTasksRequest(**request),
            metadata=metadata or self.auth(),
            timeout=RPC_TIMEOUT,
        )
        return response

    async def status(self, task_id: str) -> tasks_pb2.TaskStatus.ValueType:
        """The task's status, through GetTask."""
        return (await self.get(task_id)).status


StartScheduler = Callable[..., Awaitable[Scheduler]]


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str:
    """The scheduler's database: empty for its SQLite file under FARM_HOME.

    A module that runs on both databases parametrizes it indirectly with
    BOTH_DATABASES: "postgresql" gives a fresh PostgreSQL database instead.
    """
    if getattr(request, "param", "sqlite") == "sqlite":
        return ""
    return str(request.getfixturevalue("postgres_url"))


BOTH_DATABASES = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
"""Runs each test of a module on the scheduler's SQLite file and on PostgreSQL."""


@pytest.fixture
async def start_scheduler(
    queue: Queue, nats_server: NatsServer, farm_home: Path, database_url: str
) -> AsyncIterator[StartScheduler]:
    """Starts scheduler replicas sharing one database and NATS; stops them afterwards.

    Watchers poll only once a minute, so a test that waits for a change proves
    that the change woke them.
    """
    tenant = f"tenant-{secrets.token_hex(4)}"
    async with contextlib.AsyncExitStack() as running:

        async def start(**overrides: Any) -> Scheduler:
            values: dict[str, Any] = {
                "FARM_HOME": farm_home,
                "FARM_IDENTITY_PUBLIC_KEY": TEST_PUBLIC_KEY,
                "grant_key": SecretStr(TEST_GRANT_KEY),
                "NATS_URL": nats_server.url,
                "FARM_SCHEDULER_DATABASE_URL": database_url,
                "republish_interval_seconds": 0.2,
                "republish_grace_seconds": 2.0,
                "publish_timeout_seconds": 1.0,
                "deadline_sweep_interval_seconds": 0.1,
                "watch_poll_seconds": 60,
                **overrides,
            }
            settings = SchedulerSettings(**values)
            service = SchedulerService(settings)
            host = await running.enter_async_context(serving(service, settings))
            channel = await running.enter_async_context(grpc.aio.insecure_channel(host.address))
            # grpc ships no types: mypy cannot tell that the stubs are made on an aio channel.
            return Scheduler(
                service,
                settings,
                cast(
                    "tasks_pb2_grpc.TaskServiceAsyncStub", tasks_pb2_grpc.TaskServiceStub(channel)
                ),
                cast(
                    "admin_pb2_grpc.AdminServiceAsyncStub", admin_pb2_grpc.AdminServiceStub(channel)
                ),
                tenant,
                channel,
            )

        yield start


@pytest.fixture
async def scheduler(start_scheduler: StartScheduler) -> Scheduler:
    """One scheduler on the test's database and fresh streams."""
    return await start_scheduler()


@pytest.fixture
async def hand_run_scheduler(start_scheduler: StartScheduler) -> Scheduler:
    """A scheduler whose republisher waits an hour between rounds: the test runs them itself.

    Its rounds take the unpublished tasks older than its grace (2 s): `backdate` ages one.
    """
    return await start_scheduler(republish_interval_seconds=3600)


LONG_AGO = dt.timedelta(hours=1)
"""Further back than any republish grace of the tests."""


async def backdate(store: TaskStore, task_id: str) -> None:
    """Moves the task's create time LONG_AGO back, as if it had been stored then."""
    async with store.engine.begin() as connection:
        query = select(tasks.c.create_time).where(tasks.c.id == task_id)
        created = (await connection.execute(query)).scalar_one()
        await connection.execute(
            update(tasks).where(tasks.c.id == task_id).values(create_time=created - LONG_AGO)
        )


def sample(name: str, **labels: str) -> float:
    """The current value of a metric of this process's schedulers (0 before its first)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def counted(name: str, value: float, **labels: str) -> None:
    """Waits until the metric `name` is `value`.

    A scheduler counts a change or a callback attempt just after committing it, so a
    reader of its row (GetTask) may see it a moment before the count.
    """
    await assert_eventually(
        lambda: sample(name, **labels) == value,
        message=lambda: f"{name}{labels} is {sample(name, **labels)}, not {value}",
    )


def stored_spec(**fields: Any) -> tasks_pb2.TaskSpec:
    """task_spec(**fields) validated, as the scheduler stores it."""
    return validate_spec(task_spec(**fields), max_attempts_cap=10, default_timeout_ms=30000)


def succeeded_result() -> tasks_pb2.TaskResult:
    """A result as an agent reports it for a screenshot."""
    return tasks_pb2.TaskResult(
        artifacts=[
            tasks_pb2.ArtifactRef(
                id="art_1",
                kind=tasks_pb2.ARTIFACT_KIND_SCREENSHOT,
                content_type="image/png",
                size_bytes=1234,
                sha256="ab" * 32,
            )
        ],
        http_status=200,
        final_url="https://example.com/",
        title="Example Domain",
    )


async def until(
    scheduler: Scheduler,
    task_id: str,
    status: tasks_pb2.TaskStatus.ValueType,
    attempts: int | None = None,
) -> tasks_pb2.Task:
    """Waits until GetTask reports `status` (after `attempts` attempts, if given); the task then."""

    async def there() -> bool:
        task = await scheduler.get(task_id)
        return task.status == status and attempts in (None, task.attempts)

    after = "" if attempts is None else f"/{attempts}"
    await assert_eventually(there, message=f"task {task_id} never reached {status}{after}")
    return await scheduler.get(task_id)


async def rpc_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    """The error the awaited call fails with."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value
