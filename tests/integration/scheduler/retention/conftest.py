"""The retention tests' parts: a scheduler and a storage service on SQLite and PostgreSQL.

The sweep's clock is its `cutoff`, moved by the tests instead of waited for; the
helpers put tasks in the past and upload their artifacts as an agent does.
"""

import datetime as dt
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import func, insert, select, update

from farm.tasks.v1 import tasks_pb2
from farm_core.db import utcnow
from farm_scheduler.retention import TaskRetention
from farm_scheduler.sessions.store import sessions
from farm_scheduler.task_rows import tasks
from tests.conftest import NatsServer, S3Server
from tests.integration.scheduler.conftest import Scheduler, StartScheduler
from tests.integration.storage.conftest import Storage, agent_token, serving_storage
from tests.integration.storage.conftest import storage_settings as storage_settings_of
from tests.integration.storage.saved_calls import PNG_A

NOW = utcnow()
THIRTY_DAYS_AGO = NOW - dt.timedelta(days=30)
LONG_AGO = NOW - dt.timedelta(days=40)
LATELY = NOW - dt.timedelta(days=1)
RESULT = tasks_pb2.TaskResult(final_url="https://example.com/").SerializeToString()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The scheduler's and storage's database: their SQLite files, or one PostgreSQL one."""
    if request.param == "sqlite":
        return ""
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def scheduler(start_scheduler: StartScheduler) -> Scheduler:
    """One scheduler on the test's database and fresh streams."""
    return await start_scheduler()


@pytest.fixture
async def storage(
    scheduler: Scheduler,
    seaweedfs: S3Server,
    farm_home: Path,
    database_url: str,
    nats_server: NatsServer,
) -> AsyncIterator[Storage]:
    """A storage service beside the scheduler, as the scheduler's tenant."""
    settings = storage_settings_of(
        farm_home, database_url, seaweedfs, seaweedfs.bucket, nats_server.url
    )
    async with serving_storage(settings, seaweedfs, scheduler.tenant) as served:
        yield served


def retention_of(scheduler: Scheduler) -> TaskRetention:
    retention = scheduler.service.retention
    assert retention is not None
    return retention


async def ended(
    scheduler: Scheduler,
    status: tasks_pb2.TaskStatus.ValueType,
    finish_time: dt.datetime | None,
    **columns: Any,
) -> str:
    """A task of the test's tenant put in `status`, ended at `finish_time`; its id.

    Created then too (unless `columns` say otherwise): the sweep goes by both times.
    """
    task = await scheduler.create()
    values = {"status": tasks_pb2.TaskStatus.Name(status), "finish_time": finish_time}
    if finish_time is not None:
        values["create_time"] = finish_time
    values.update(columns)
    async with scheduler.service.store.engine.begin() as connection:
        await connection.execute(update(tasks).where(tasks.c.id == task.id).values(**values))
    return task.id


async def session_row(
    scheduler: Scheduler, create_time: dt.datetime, close_time: dt.datetime | None
) -> str:
    """A session of the test's tenant, closed at `close_time` (None: still active); its id."""
    session_id = f"ses_{secrets.token_hex(8)}"
    async with scheduler.service.store.engine.begin() as connection:
        await connection.execute(
            insert(sessions).values(
                id=session_id,
                tenant=scheduler.tenant,
                state="SESSION_STATE_ACTIVE" if close_time is None else "SESSION_STATE_CLOSED",
                spec=b"",
                labels={},
                agent_id="agent-1",
                create_time=create_time,
                expire_time=NOW,
                close_time=close_time,
                close_reason="",
                commands=0,
                recording=b"",
            )
        )
    return session_id


async def sessions_gone(scheduler: Scheduler, *session_ids: str) -> bool:
    """Whether none of the sessions is left in the scheduler's database."""
    async with scheduler.service.store.engine.connect() as connection:
        left = await connection.scalar(select(func.count()).where(sessions.c.id.in_(session_ids)))
    return left == 0


async def stored(storage: Storage, task_id: str, name: str = "screenshot") -> str:
    """An artifact of the task, uploaded as its agent does; its id."""
    uploaded = await storage.upload(task_id, name, PNG_A, metadata=agent_token(storage.tenant))
    return uploaded.artifact.id


async def task_gone(scheduler: Scheduler, task_id: str) -> bool:
    try:
        await scheduler.get(task_id)
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND, error
        return True
    return False


async def artifact_gone(storage: Storage, artifact_id: str) -> bool:
    try:
        await storage.get(artifact_id)
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND, error
        return True
    return False
