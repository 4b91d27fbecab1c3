"""The result cache over gRPC: a tenant's repeated spec is answered with its earlier result.

The test plays the agent; a hit must publish nothing, so an agent would never see it.
"""

import asyncio
import datetime as dt
from typing import Any

import grpc
import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core.db import utcnow
from farm_core.queue import TASK_STREAM
from farm_core.quotas import TenantQuotas
from farm_scheduler.changes import ChangeReporter
from farm_scheduler.store import TaskChange
from tests.helpers import task_spec
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import (
    FAILED,
    QUEUED,
    SUCCEEDED,
    Scheduler,
    StartScheduler,
    rpc_error,
    sample,
    succeeded_result,
    until,
)

pytestmark = pytest.mark.integration

NOT_FOUND = tasks_pb2.TaskError(code="SELECTOR_NOT_FOUND", message="no #main", retryable=False)


async def published(queue: Queue) -> int:
    """How many WorkItems the scheduler has published to the agents (taken ones too)."""
    return int((await queue.js.stream_info(TASK_STREAM)).state.last_seq)


async def ran(
    scheduler: Scheduler, queue: Queue, *, ended: dt.datetime | None = None, **fields: Any
) -> tasks_pb2.Task:
    """A task of task_spec(**fields) that an agent ran and that succeeded (at `ended`)."""
    task = await scheduler.create(**fields)
    assert (await queue.take()).task_id == task.id
    await queue.report(task.id, SUCCEEDED, result=succeeded_result(), time=ended)
    return await until(scheduler, task.id, SUCCEEDED)


async def test_same_spec_is_answered_succeeded_and_cached_without_running(
    scheduler: Scheduler, queue: Queue
) -> None:
    first = await ran(scheduler, queue, labels={"job": "a"})
    publishes = await published(queue)
    hits, misses = sample("farm_task_cache_hits_total"), sample("farm_task_cache_misses_total")

    # Fields that steer the run, not the page, do not matter.
    again = await scheduler.create(
        labels={"job": "b"}, priority="PRIORITY_HIGH", maxAttempts=1, timeoutMs=5000
    )

    assert (again.status, again.cached, again.attempts) == (SUCCEEDED, True, 0)
    assert again.id != first.id
    assert again.result == first.result == succeeded_result()
    assert again.spec.labels == {"job": "b"}
    assert again.HasField("finish_time") and not again.agent_id
    stored = await scheduler.get(again.id)
    assert (stored.status, stored.cached, stored.result) == (SUCCEEDED, True, first.result)
    assert not (await scheduler.get(first.id)).cached
    run = await scheduler.run()
    assert (run.status, run.cached, run.result) == (SUCCEEDED, True, first.result)
    assert await published(queue) == publishes == 1
    assert sample("farm_task_cache_hits_total") == hits + 2
    assert sample("farm_task_cache_misses_total") == misses


async def test_a_result_older_than_the_ttl_is_not_used(scheduler: Scheduler, queue: Queue) -> None:
    two_hours_ago = utcnow() - dt.timedelta(hours=2)
    await ran(scheduler, queue, ended=two_hours_ago)
    misses = sample("farm_task_cache_misses_total")

    fresh = await scheduler.create()

    assert (fresh.status, fresh.cached) == (QUEUED, False)
    assert fresh.spec.cache_ttl_seconds == 3600
    assert sample("farm_task_cache_misses_total") == misses + 1
    accepting = await scheduler.create(cacheTtlSeconds=3 * 3600)
    assert (accepting.status, accepting.cached) == (SUCCEEDED, True)


async def test_cache_ttl_zero_always_runs(scheduler: Scheduler, queue: Queue) -> None:
    await ran(scheduler, queue)
    lookups = sample("farm_task_cache_hits_total") + sample("farm_task_cache_misses_total")

    task = await scheduler.create(cacheTtlSeconds=0)

    assert (task.status, task.cached) == (QUEUED, False)
    assert task.spec.HasField("cache_ttl_seconds") and task.spec.cache_ttl_seconds == 0
    assert (await queue.take()).task_id == task.id
    assert sample("farm_task_cache_hits_total") + sample("farm_task_cache_misses_total") == lookups


async def test_another_tenant_is_never_answered_from_the_cache(
    scheduler: Scheduler, queue: Queue
) -> None:
    await ran(scheduler, queue)
    stranger = scheduler.auth(tenant="someone-else")

    task = await scheduler.create(metadata=stranger)

    assert (task.status, task.cached, task.tenant) == (QUEUED, False, "someone-else")
    assert (await queue.take()).task_id == task.id


async def test_a_failed_task_is_never_a_hit(scheduler: Scheduler, queue: Queue) -> None:
    failed = await scheduler.create()
    await queue.take()
    await queue.report(failed.id, FAILED, error=NOT_FOUND)
    await until(scheduler, failed.id, FAILED)

    task = await scheduler.create()

    assert (task.status, task.cached) == (QUEUED, False)


@pytest.mark.parametrize(("http_status", "hit"), [(503, False), (429, False), (404, True)])
async def test_a_page_that_answered_a_passing_error_does_not_serve_the_cache(
    scheduler: Scheduler, queue: Queue, http_status: int, hit: bool
) -> None:
    """With failOnHttpError off a 503 page is a success; the next task loads the page again."""
    first = await scheduler.create()
    await queue.take()
    result = succeeded_result()
    result.http_status = http_status
    await queue.report(first.id, SUCCEEDED, result=result)
    await until(scheduler, first.id, SUCCEEDED)

    task = await scheduler.create()

    assert (task.status, task.cached) == ((SUCCEEDED, True) if hit else (QUEUED, False))


async def test_a_spec_that_differs_in_what_it_captures_misses(
    scheduler: Scheduler, queue: Queue
) -> None:
    await ran(scheduler, queue)

    for fields in (
        {"viewport": {"width": 800, "height": 600}},
        {"screenshot": {"fullPage": True}},
        {"setup": {"locale": "de-DE"}},
        {"region": "eu-central"},
    ):
        task = await scheduler.create(**fields)
        assert (task.status, task.cached) == (QUEUED, False), fields


async def test_a_cached_answer_serves_no_later_task(scheduler: Scheduler, queue: Queue) -> None:
    """A result's age is that of its run: a hit does not make it fresh again."""
    first = await ran(scheduler, queue, ended=utcnow() - dt.timedelta(minutes=50))
    hit = await scheduler.create()
    assert (hit.cached, hit.result) == (True, first.result)

    # The hit ended just now, but the result it carries is 50 minutes old.
    task = await scheduler.create(cacheTtlSeconds=600)

    assert (task.status, task.cached) == (QUEUED, False)


async def test_a_task_that_saves_a_profile_is_never_cached(
    scheduler: Scheduler, queue: Queue
) -> None:
    profiled: dict[str, Any] = {"profile": "shop", "saveProfile": True}
    first = await ran(scheduler, queue, **profiled)
    assert first.spec.cache_ttl_seconds == 0

    again = await scheduler.create(**profiled, cacheTtlSeconds=3600)
    without = await scheduler.create(profile="shop", cacheTtlSeconds=3600)

    assert (again.status, again.cached) == (QUEUED, False)
    assert (without.status, without.cached) == (QUEUED, False)


async def test_a_tenant_at_its_queued_quota_is_still_answered_from_the_cache(
    scheduler: Scheduler, queue: Queue
) -> None:
    await ran(scheduler, queue)
    quotas = TenantQuotas(max_queued_tasks=1)
    await scheduler.create(quotas, viewport={"width": 800, "height": 600})

    hit = await scheduler.create(quotas)
    refused = await rpc_error(scheduler.create(quotas, cacheTtlSeconds=0))

    assert (hit.status, hit.cached) == (SUCCEEDED, True)
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_an_out_of_bounds_ttl_is_refused_naming_the_field(scheduler: Scheduler) -> None:
    error = await rpc_error(scheduler.create(cacheTtlSeconds=-1))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("cacheTtlSeconds: ")


async def test_a_batch_item_the_cache_answers_is_cached_and_not_published(
    scheduler: Scheduler, queue: Queue
) -> None:
    first = await ran(scheduler, queue, labels={"job": "a"})
    publishes = await published(queue)

    response = await scheduler.create_batch(
        [task_spec(labels={"job": "b"}), task_spec(url="https://example.com/other")]
    )

    hit, miss = response.tasks
    assert (hit.status, hit.cached, hit.result) == (SUCCEEDED, True, first.result)
    assert (miss.status, miss.cached) == (QUEUED, False)
    assert (await queue.take()).task_id == miss.id
    assert await published(queue) == publishes + 1


async def test_a_key_without_a_result_is_a_miss_without_a_query_and_a_result_reaches_replicas(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    first, second = await start_scheduler(), await start_scheduler()
    skipped, hits = (
        sample("farm_task_cache_lookups_skipped_total"),
        sample("farm_task_cache_hits_total"),
    )

    # Nothing ever succeeded with this spec: no replica asks SQL for it.
    queued = await second.create(url="https://example.com/fresh")
    assert (queued.status, queued.cached) == (QUEUED, False)
    assert sample("farm_task_cache_lookups_skipped_total") == skipped + 1

    # Its success, applied by whichever replica took the agent's event, reaches both
    # before either wakes a watcher of the task.
    watches = [aiter(replica.watch(queued.id)) for replica in (first, second)]
    for watch in watches:
        assert (await anext(watch)).status == QUEUED
    assert (await queue.take()).task_id == queued.id
    await queue.report(queued.id, SUCCEEDED, result=succeeded_result())
    for replica, watch in zip((first, second), watches, strict=True):
        assert (await anext(watch)).status == SUCCEEDED
        again = await replica.create(url="https://example.com/fresh")
        assert (again.status, again.cached) == (SUCCEEDED, True)
    assert sample("farm_task_cache_hits_total") == hits + 2
    assert sample("farm_task_cache_lookups_skipped_total") == skipped + 1


async def test_a_success_read_before_it_is_announced_already_answers_from_the_cache(
    scheduler: Scheduler, queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader may see a success as soon as it is committed (a GetTask, a watcher's poll)
    while the scheduler has not yet told anyone, as on a loaded machine; the same spec
    created then is answered from the cache all the same."""
    announced = asyncio.Event()
    report = ChangeReporter.report

    async def late_for_successes(reporter: ChangeReporter, change: TaskChange) -> None:
        if change.after.state.status == SUCCEEDED:
            await announced.wait()
        await report(reporter, change)

    monkeypatch.setattr(ChangeReporter, "report", late_for_successes)
    try:
        first = await ran(scheduler, queue)
        again = await scheduler.create()
    finally:
        announced.set()

    assert (again.status, again.cached, again.result) == (SUCCEEDED, True, first.result)
