"""Ended tasks and closed sessions go after FARM_SCHEDULER_TASK_RETENTION_DAYS, artifacts and all.

A real scheduler and a real storage service (SeaweedFS) on SQLite and on PostgreSQL
(conftest.py); the sweep's clock is its `cutoff`, moved by the test instead of waited for.
"""

import asyncio
import datetime as dt
from typing import Any

import nats
import pytest
from sqlalchemy import func, insert, select, update

from farm_scheduler.models import AttemptRow
from farm_scheduler.retention import TaskRetention
from farm_scheduler.sessions.store import sessions
from farm_scheduler.task_rows import task_attempts, tasks
from tests.conftest import NatsServer
from tests.helpers import assert_eventually, task_spec
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Scheduler,
    StartScheduler,
    sample,
    succeeded_result,
    until,
)
from tests.integration.scheduler.retention.conftest import (
    LATELY,
    LONG_AGO,
    NOW,
    RESULT,
    THIRTY_DAYS_AGO,
    artifact_gone,
    ended,
    retention_of,
    session_row,
    stored,
    task_gone,
)
from tests.integration.storage.conftest import Storage
from tests.integration.storage.saved_calls import PNG_A, baseline_image, create_baseline

pytestmark = pytest.mark.integration


async def test_old_ended_tasks_go_with_their_attempts_and_artifacts(
    scheduler: Scheduler, storage: Storage
) -> None:
    old = {
        status: await ended(scheduler, status, LONG_AGO)
        for status in (SUCCEEDED, FAILED, CANCELLED)
    }
    old_artifacts = [await stored(storage, task_id) for task_id in old.values()]
    async with scheduler.service.store.engine.begin() as connection:
        await connection.execute(
            insert(task_attempts).values(
                task_id=old[FAILED],
                attempt=1,
                agent_id="agent-1",
                error_code="TIMEOUT",
                error_message="navigation timed out",
                retryable=True,
            )
        )
    recent = await ended(scheduler, SUCCEEDED, LATELY)
    recent_artifact = await stored(storage, recent)
    running = await ended(scheduler, RUNNING, None)
    queued = (await scheduler.create()).id
    deleted_before = sample("farm_tasks_deleted_total")
    expired_before = sample("farm_storage_artifacts_expired_total")

    swept = await retention_of(scheduler).purge(THIRTY_DAYS_AGO)

    assert swept.tasks == 3
    for task_id in old.values():
        assert await task_gone(scheduler, task_id)
    for artifact_id in old_artifacts:
        assert await artifact_gone(storage, artifact_id)
    for task_id in old.values():
        assert storage.object_names(f"{storage.tenant}/{task_id}/") == []
    async with scheduler.service.store.engine.connect() as connection:
        attempts = (
            select(func.count())
            .select_from(AttemptRow)
            .where(task_attempts.c.task_id == old[FAILED])
        )
        assert (await connection.execute(attempts)).scalar_one() == 0
    assert (await scheduler.get(recent)).status == SUCCEEDED
    assert (await storage.get(recent_artifact)).id == recent_artifact
    assert (await scheduler.get(running)).status == RUNNING
    assert (await scheduler.get(queued)).status == QUEUED
    assert sample("farm_tasks_deleted_total") == deleted_before + 3
    assert sample("farm_storage_artifacts_expired_total") == expired_before + 3


async def test_a_baseline_outlives_the_task_whose_screenshot_it_was(
    scheduler: Scheduler, storage: Storage
) -> None:
    task_id = await ended(scheduler, SUCCEEDED, LONG_AGO)
    await create_baseline(storage, await stored(storage, task_id))

    await retention_of(scheduler).purge(THIRTY_DAYS_AGO)

    assert await task_gone(scheduler, task_id)
    assert (await baseline_image(storage)).image == PNG_A


async def test_a_result_shared_by_a_kept_cached_task_is_kept_until_that_one_goes(
    scheduler: Scheduler, storage: Storage
) -> None:
    source = await ended(scheduler, SUCCEEDED, LONG_AGO, cache_key="a" * 64, result=RESULT)
    shared = await stored(storage, source)
    cached = await ended(
        scheduler, SUCCEEDED, LATELY, cached=True, cache_source=source, result=RESULT
    )

    await retention_of(scheduler).purge(THIRTY_DAYS_AGO)

    assert (await scheduler.get(source)).status == SUCCEEDED
    assert (await scheduler.get(cached)).cached
    assert (await storage.get(shared)).id == shared

    # Thirty days on, the cached task is past retention too: it goes, then its source.
    swept = await retention_of(scheduler).purge(NOW)

    assert swept.tasks == 2
    assert await task_gone(scheduler, cached)
    assert await task_gone(scheduler, source)
    assert await artifact_gone(storage, shared)


async def test_tasks_answered_from_the_cache_keep_the_task_that_ran(
    scheduler: Scheduler, queue: Queue, storage: Storage
) -> None:
    source = await scheduler.create()
    assert (await queue.take()).task_id == source.id
    await queue.report(source.id, SUCCEEDED, result=succeeded_result())
    await until(scheduler, source.id, SUCCEEDED)
    shared = await stored(storage, source.id)
    hit = await scheduler.create()
    batch_hit = (await scheduler.create_batch([task_spec()])).tasks[0]
    assert hit.cached and batch_hit.cached
    unrelated = await ended(scheduler, FAILED, LONG_AGO)
    async with scheduler.service.store.engine.begin() as connection:
        await connection.execute(
            update(tasks)
            .where(tasks.c.id == source.id)
            .values(create_time=LONG_AGO, finish_time=LONG_AGO)
        )

    await retention_of(scheduler).purge(THIRTY_DAYS_AGO)

    assert (await scheduler.get(source.id)).status == SUCCEEDED
    assert (await storage.get(shared)).id == shared
    # They name the task they share: the tenant's other old tasks go.
    assert await task_gone(scheduler, unrelated)


async def test_a_cached_task_older_than_its_source_column_keeps_earlier_results(
    scheduler: Scheduler, storage: Storage
) -> None:
    # Answered from the cache before migration 0016: it names no source.
    source = await ended(scheduler, SUCCEEDED, LONG_AGO, result=RESULT)
    shared = await stored(storage, source)
    await ended(scheduler, SUCCEEDED, LATELY, cached=True, result=RESULT)

    await retention_of(scheduler).purge(THIRTY_DAYS_AGO)

    assert (await scheduler.get(source)).status == SUCCEEDED
    assert (await storage.get(shared)).id == shared


async def test_a_short_retention_deletes_results_the_cache_could_have_answered_with(
    start_scheduler: StartScheduler, storage: Storage
) -> None:
    # FARM_SCHEDULER_TASK_RETENTION_DAYS=1 kept every result with a cache key (most
    # successes: screenshots cache an hour by default) for 7 days, the cache's longest reach.
    scheduler = await start_scheduler(task_retention_days=1)
    three_days_ago = NOW - dt.timedelta(days=3)
    cacheable = await ended(scheduler, SUCCEEDED, three_days_ago, cache_key="b" * 64)
    screenshot = await stored(storage, cacheable)
    uncacheable = await ended(scheduler, SUCCEEDED, three_days_ago, cache_key="")

    await retention_of(scheduler).purge(NOW - dt.timedelta(days=1))

    assert await task_gone(scheduler, cacheable)
    assert await artifact_gone(storage, screenshot)
    assert await task_gone(scheduler, uncacheable)


async def test_a_short_retention_bounds_how_old_a_result_the_cache_answers_with(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    scheduler = await start_scheduler(task_retention_days=1)
    source = await scheduler.create()
    assert (await queue.take()).task_id == source.id
    await queue.report(source.id, SUCCEEDED, result=succeeded_result())
    await until(scheduler, source.id, SUCCEEDED)
    # Ended a day less half an hour ago: within the retention, not within it less the
    # hour the replicas' clocks may differ by, so a sweep may be deleting it now.
    a_day_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=23, minutes=30)
    async with scheduler.service.store.engine.begin() as connection:
        await connection.execute(
            update(tasks)
            .where(tasks.c.id == source.id)
            .values(create_time=a_day_ago, finish_time=a_day_ago)
        )

    # It accepts a result a week old, but the retention keeps none that long.
    again = await scheduler.create(cacheTtlSeconds=604800)

    assert not again.cached
    assert (await queue.take()).task_id == again.id


async def test_a_closed_sessions_row_and_recording_go_with_its_close_time(
    scheduler: Scheduler, storage: Storage
) -> None:
    closed = await session_row(scheduler, LONG_AGO, close_time=LONG_AGO)
    open_one = await session_row(scheduler, LONG_AGO, close_time=None)
    recording = await stored(storage, closed, "recording")

    swept = await retention_of(scheduler).purge(THIRTY_DAYS_AGO)

    assert swept.sessions == 1
    assert await artifact_gone(storage, recording)
    async with scheduler.service.store.engine.connect() as connection:
        left = (
            (
                await connection.execute(
                    select(sessions.c.id).where(sessions.c.id.in_([closed, open_one]))
                )
            )
            .scalars()
            .all()
        )
    assert left == [open_one]


async def test_two_replicas_sweeping_at_once_delete_each_task_once(
    scheduler: Scheduler, start_scheduler: StartScheduler, storage: Storage
) -> None:
    other = await start_scheduler()
    old = [await ended(scheduler, SUCCEEDED, LONG_AGO) for _ in range(6)]
    artifacts = [await stored(storage, task_id) for task_id in old]

    swept = await asyncio.gather(
        retention_of(scheduler).purge(THIRTY_DAYS_AGO), retention_of(other).purge(THIRTY_DAYS_AGO)
    )

    assert sum(each.tasks for each in swept) == len(old)
    for task_id, artifact_id in zip(old, artifacts, strict=True):
        assert await task_gone(scheduler, task_id)
        assert await artifact_gone(storage, artifact_id)


async def test_a_replica_sweeps_at_start_when_no_other_holds_the_turn(
    scheduler: Scheduler, start_scheduler: StartScheduler, storage: Storage
) -> None:
    old = await ended(scheduler, FAILED, LONG_AGO)
    artifact = await stored(storage, old)
    # Stopped, the replica that swept at its start gives its turn up (test_retention_turns).
    await retention_of(scheduler).stop()

    await start_scheduler()

    await assert_eventually(lambda: task_gone(scheduler, old), message="the old task stayed")
    await assert_eventually(lambda: artifact_gone(storage, artifact), message="its artifact stayed")


class CountedRetention(TaskRetention):
    """A retention sweep that counts its loop's rounds (swept, or skipped for another's turn)."""

    passes = 0

    async def take_turn(self, cutoff: dt.datetime) -> Any:
        self.passes += 1
        return await super().take_turn(cutoff)


async def test_retention_zero_keeps_every_task(
    scheduler: Scheduler, nats_server: NatsServer, storage: Storage
) -> None:
    old = await ended(scheduler, SUCCEEDED, NOW - dt.timedelta(days=3000))
    nc = await nats.connect(nats_server.url)
    engine = scheduler.service.store.engine
    forever = CountedRetention(engine, nc, 0, 100, 5.0)
    # A witness instead of a sleep: started after `forever`, its first round (at once, and
    # sparing a task of 3000 days) shows that a round of `forever` would have run too.
    witness = CountedRetention(engine, nc, 5000, 100, 5.0)
    forever.start()
    witness.start()
    try:
        await assert_eventually(lambda: witness.passes > 0, message="the witness never swept")
    finally:
        await forever.stop()
        await witness.stop()
        await nc.close()

    assert forever.passes == 0
    assert (await scheduler.get(old)).status == SUCCEEDED
