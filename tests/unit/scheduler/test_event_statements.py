"""What applying an agent's event costs in SQL: the task, its attempts, the swap, the attempt."""

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core.db import async_database_url
from farm_scheduler.callbacks.attempts import CallbackAttempt
from farm_scheduler.callbacks.rows import record_attempt
from farm_scheduler.store import TaskStore
from farm_scheduler.validation import validate_spec
from tests.helpers import sql_statements

from .agent_events import T0, at, event

RUNNING, SUCCEEDED, FAILED = (
    tasks_pb2.TASK_STATUS_RUNNING,
    tasks_pb2.TASK_STATUS_SUCCEEDED,
    tasks_pb2.TASK_STATUS_FAILED,
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TaskStore]:
    """A scheduler database in a SQLite file."""
    store = TaskStore(async_database_url("", tmp_path / "scheduler.db"), clock=lambda: T0)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


def screenshot(callback_url: str = "") -> tasks_pb2.TaskSpec:
    spec = tasks_pb2.TaskSpec(url="https://example.com/", callback_url=callback_url)
    spec.screenshot.SetInParent()
    return validate_spec(spec, max_attempts_cap=10, default_timeout_ms=30000)


def of(task_id: str, report: Any) -> Any:
    report.task_id = task_id
    return report


async def test_an_event_of_a_task_without_callback_reads_no_callback_attempts(
    store: TaskStore,
) -> None:
    record, _ = await store.create("acme", screenshot())

    with sql_statements(store.engine) as started:
        await store.apply_event(of(record.id, event(RUNNING, seconds=1)), at(1))
    with sql_statements(store.engine) as ended:
        change = await store.apply_event(of(record.id, event(SUCCEEDED, seconds=2)), at(2))

    # The task, its attempts, the revision swap, the attempt's insert (then its update).
    assert len(started) == 4, started
    assert len(ended) == 4, ended
    assert not any("callback_attempts" in statement for statement in started + ended)
    assert change is not None
    assert change.after == await store.get("acme", record.id)


async def test_an_event_of_a_task_with_a_callback_keeps_its_callback_attempts(
    store: TaskStore,
) -> None:
    record, _ = await store.create("acme", screenshot("https://hooks.example.com/done"))
    await store.apply_event(of(record.id, event(RUNNING, seconds=1)), at(1))
    await store.apply_event(of(record.id, event(FAILED, seconds=2)), at(2))
    delivered = CallbackAttempt(1, T0 + dt.timedelta(seconds=3), http_status=200)
    async with store.engine.begin() as connection:
        await record_attempt(connection, record.id, 0, delivered, None)
    await store.requeue("acme", record.id, at(4), 0)

    change = await store.apply_event(of(record.id, event(RUNNING, seconds=5)), at(5))

    assert change is not None
    assert change.before.callback_attempts == (delivered,)
    assert change.after.callback_attempts == (delivered,)
    assert change.after == await store.get("acme", record.id)
