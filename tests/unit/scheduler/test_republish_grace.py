"""The republisher reads only tasks and dead letters whose first publish is over (the grace).

A task is republished once both its create and its latest requeue are older than the
grace; a dead letter once its dead time is.
"""

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core.db import async_database_url
from farm_scheduler.records import TaskRecord
from farm_scheduler.store import TaskStore
from farm_scheduler.validation import validate_spec

from .agent_events import T0, at, event

GRACE = dt.timedelta(seconds=10)
FAILED = tasks_pb2.TASK_STATUS_FAILED
FINAL = tasks_pb2.TaskError(code="SELECTOR_NOT_FOUND", message="#missing", retryable=False)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TaskStore]:
    """A scheduler database in a SQLite file whose creates are stamped T0."""
    store = TaskStore(async_database_url("", tmp_path / "scheduler.db"), clock=lambda: T0)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def created(store: TaskStore) -> TaskRecord:
    spec = tasks_pb2.TaskSpec(url="https://example.com/")
    spec.screenshot.SetInParent()
    record, _ = await store.create(
        "acme", validate_spec(spec, max_attempts_cap=10, default_timeout_ms=30000)
    )
    return record


async def failed(store: TaskStore, seconds: float) -> TaskRecord:
    """A task created at T0 that failed for good at(`seconds`), as its agent reported."""
    record = await created(store)
    report = event(FAILED, seconds=seconds, error=FINAL)
    report.task_id = record.id
    change = await store.apply_event(report, at(seconds))
    assert change is not None and change.after.dead_letter_pending
    return change.after


def ids(records: list[TaskRecord]) -> list[str]:
    return [record.id for record in records]


async def test_a_new_task_is_republished_once_older_than_the_grace(store: TaskStore) -> None:
    record = await created(store)

    assert await store.unpublished(10, T0) == []
    assert ids(await store.unpublished(10, at(1))) == [record.id]


async def test_a_requeued_task_is_republished_once_its_requeue_is_older_than_the_grace(
    store: TaskStore,
) -> None:
    record = await failed(store, seconds=5)
    hour_later = at(3600)
    await store.requeue("acme", record.id, hour_later, event_sequence=0)

    # Created an hour before, but its new queuing may be in the requeue's publish's hands.
    assert await store.unpublished(10, hour_later - GRACE) == []
    assert ids(await store.unpublished(10, hour_later + dt.timedelta(seconds=1))) == [record.id]


async def test_a_dead_letter_is_republished_once_its_dead_time_is_older_than_the_grace(
    store: TaskStore,
) -> None:
    record = await failed(store, seconds=5)

    assert await store.pending_dead_letters(10, at(5)) == []
    assert ids(await store.pending_dead_letters(10, at(6))) == [record.id]
