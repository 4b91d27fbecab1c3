"""The scheduler's promises over gRPC, on the real nats-server and SQLite; the test is the agent."""

import asyncio
import re
from typing import Any

import grpc
import pytest
from nats.js.errors import KeyNotFoundError

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.queue import TASK_STREAM, Priority, cancel_subject, task_subject
from farm_core.shared_buckets import cancel_bucket
from tests.helpers import assert_eventually
from tests.integration.scheduler.agent_side import RPC_TIMEOUT, Queue
from tests.integration.scheduler.conftest import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Scheduler,
    StartScheduler,
    counted,
    rpc_error,
    sample,
    succeeded_result,
    until,
)

pytestmark = pytest.mark.integration


async def test_created_task_is_queued_and_published_once_with_its_id(
    scheduler: Scheduler, queue: Queue
) -> None:
    task = await scheduler.create()

    assert re.fullmatch(r"[0-9a-f]{32}", task.id)
    assert (task.status, task.tenant, task.attempts) == (QUEUED, scheduler.tenant, 0)
    assert task.spec.priority == tasks_pb2.PRIORITY_NORMAL
    assert await queue.subjects() == {task_subject("", Priority.NORMAL): 1}
    message = await queue.js.get_last_msg(TASK_STREAM, task_subject("", Priority.NORMAL))
    assert (message.headers or {}).get("Nats-Msg-Id") == task.id
    item = queue_pb2.WorkItem.FromString(message.data or b"")
    assert (item.task_id, item.tenant, item.spec) == (task.id, scheduler.tenant, task.spec)
    assert item.create_time == task.create_time


async def test_region_and_priority_choose_the_subject(scheduler: Scheduler, queue: Queue) -> None:
    task = await scheduler.create(region="eu", priority="PRIORITY_HIGH")

    assert await queue.subjects() == {task_subject("eu", Priority.HIGH): 1}
    message = await queue.js.get_last_msg(TASK_STREAM, task_subject("eu", Priority.HIGH))
    assert (message.headers or {}).get("Nats-Msg-Id") == task.id


async def test_agent_events_move_the_task_to_running_then_succeeded(
    scheduler: Scheduler, queue: Queue
) -> None:
    task = await scheduler.create()
    item = await queue.take()
    assert item.task_id == task.id

    await queue.report(task.id, RUNNING)
    running = await until(scheduler, task.id, RUNNING)
    assert (running.attempts, running.agent_id) == (1, queue.agent_id)
    assert running.HasField("start_time") and not running.HasField("finish_time")

    await queue.report(task.id, SUCCEEDED, result=succeeded_result())
    done = await until(scheduler, task.id, SUCCEEDED)
    assert done.result == succeeded_result()
    assert done.finish_time.ToDatetime() >= done.start_time.ToDatetime()
    assert not done.HasField("error")


async def test_failed_task_keeps_the_agents_error(scheduler: Scheduler, queue: Queue) -> None:
    task = await scheduler.create()
    await queue.report(task.id, RUNNING)
    error = tasks_pb2.TaskError(code="NAVIGATION_FAILED", message="net::ERR_NAME_NOT_RESOLVED")
    await queue.report(task.id, FAILED, error=error)

    await until(scheduler, task.id, FAILED)
    assert (await scheduler.get(task.id)).error == error


async def test_repeated_and_late_events_change_nothing(scheduler: Scheduler, queue: Queue) -> None:
    task = await scheduler.create()
    await queue.report(task.id, RUNNING)
    await queue.report(task.id, SUCCEEDED, result=succeeded_result())
    done = await until(scheduler, task.id, SUCCEEDED)

    # Redeliveries of the same reports, a late start and a contradicting end.
    await queue.report(task.id, SUCCEEDED, result=tasks_pb2.TaskResult(http_status=500))
    await queue.report(task.id, RUNNING)
    await queue.report(task.id, RUNNING, attempt=2, agent_id="agent-late")
    await queue.report(task.id, FAILED, error=tasks_pb2.TaskError(code="TIMEOUT"))
    await assert_eventually(queue.events_applied, message="events not applied")

    assert await scheduler.get(task.id) == done


async def test_later_attempt_on_another_agent_is_recorded(
    scheduler: Scheduler, queue: Queue
) -> None:
    task = await scheduler.create()
    await queue.report(task.id, RUNNING, attempt=1, agent_id="agent-a")
    await queue.report(task.id, RUNNING, attempt=2, agent_id="agent-b")

    async def second_attempt() -> bool:
        current = await scheduler.get(task.id)
        return (current.attempts, current.agent_id) == (2, "agent-b")

    await assert_eventually(second_attempt, message="the second attempt was not recorded")


async def test_cancelled_queued_task_is_announced_to_agents_and_stays_cancelled(
    scheduler: Scheduler, queue: Queue
) -> None:
    task = await scheduler.create()
    notices = await queue.nc.subscribe(cancel_subject(task.id))

    cancelled = await scheduler.cancel(task.id)

    assert cancelled.status == CANCELLED
    assert cancelled.HasField("finish_time")
    notice = await notices.next_msg(timeout=RPC_TIMEOUT)
    assert queue_pb2.CancelNotice.FromString(notice.data).task_id == task.id
    bucket = await cancel_bucket(queue.js)
    assert (await bucket.get(task.id)).key == task.id

    # An agent that took the task anyway reports it done: the cancel stands. (Its
    # RUNNING report brings a second notice, unread: a subscription left with it
    # would hold the connection's drain for its whole timeout.)
    await notices.unsubscribe()
    await queue.report(task.id, RUNNING)
    await queue.report(task.id, SUCCEEDED, result=succeeded_result())
    await assert_eventually(queue.events_applied, message="events not applied")
    assert await scheduler.get(task.id) == cancelled


async def test_cancel_of_an_ended_task_returns_it_unchanged(
    scheduler: Scheduler, queue: Queue
) -> None:
    task = await scheduler.create()
    await queue.report(task.id, SUCCEEDED, result=succeeded_result())
    done = await until(scheduler, task.id, SUCCEEDED)

    answer = await scheduler.cancel(task.id)

    assert answer == done
    bucket = await cancel_bucket(queue.js)
    with pytest.raises(KeyNotFoundError):
        await bucket.get(task.id)


async def test_watch_streams_each_change_and_ends_on_the_final_state(
    scheduler: Scheduler, queue: Queue
) -> None:
    task = await scheduler.create()
    events = scheduler.watch(task.id)

    first = await anext(events)
    assert (first.task_id, first.status, first.task.id) == (task.id, QUEUED, task.id)
    assert first.time == task.create_time

    await queue.report(task.id, RUNNING)
    running = await anext(events)
    assert (running.status, running.task.attempts) == (RUNNING, 1)
    assert running.time == running.task.start_time

    await queue.report(task.id, SUCCEEDED, result=succeeded_result())
    done = await anext(events)
    assert (done.status, done.task.result) == (SUCCEEDED, succeeded_result())
    assert done.time == done.task.finish_time

    with pytest.raises(StopAsyncIteration):
        await anext(events)


async def test_watch_of_an_ended_task_sends_it_once_and_ends(
    scheduler: Scheduler, queue: Queue
) -> None:
    task = await scheduler.create()
    await scheduler.cancel(task.id)

    events = [event async for event in scheduler.watch(task.id)]

    assert [event.status for event in events] == [CANCELLED]


async def test_watch_on_another_replica_hears_changes_applied_elsewhere(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    applier = await start_scheduler()
    watcher = await start_scheduler()
    # The watching replica applies no events itself: every change comes from the other.
    # (Not by draining it: a draining replica ends its watches, test_stopping_waits.py.)
    await watcher.service._consumer.stop(0)
    task = await applier.create()
    events = watcher.watch(task.id)
    assert (await anext(events)).status == QUEUED

    await queue.report(task.id, RUNNING)
    assert (await anext(events)).status == RUNNING
    await applier.cancel(task.id)
    assert (await anext(events)).status == CANCELLED


async def test_run_task_returns_the_finished_task(scheduler: Scheduler, queue: Queue) -> None:
    run = asyncio.ensure_future(scheduler.run())
    item = await queue.take()
    await queue.report(item.task_id, RUNNING)
    assert not run.done()
    await queue.report(item.task_id, SUCCEEDED, result=succeeded_result())

    task = await asyncio.wait_for(run, RPC_TIMEOUT)

    assert (task.id, task.status, task.result) == (item.task_id, SUCCEEDED, succeeded_result())


async def test_run_task_returns_the_task_as_it_stands_when_its_time_is_up(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    scheduler = await start_scheduler(run_queue_wait_seconds=0)

    # RunTask waits each attempt's time limit: one attempt of 1 s.
    task = await scheduler.run(timeoutMs=1000, maxAttempts=1)

    assert task.status == QUEUED
    assert await queue.subjects() == {task_subject("", Priority.NORMAL): 1}


async def test_list_pages_through_tasks_newest_first(scheduler: Scheduler) -> None:
    created = [(await scheduler.create()).id for _ in range(5)]

    pages: list[list[str]] = []
    token = ""
    for _ in range(5):
        page = await scheduler.list_tasks(page_size=2, page_token=token)
        pages.append([task.id for task in page.tasks])
        token = page.next_page_token
        if not token:
            break

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [task_id for page in pages for task_id in page] == created[::-1]


async def test_list_filters_by_status_and_labels(scheduler: Scheduler) -> None:
    nightly_web = await scheduler.create(labels={"job": "nightly", "team": "web"})
    nightly = await scheduler.create(labels={"job": "nightly"})
    hourly = await scheduler.create(labels={"job": "hourly"})
    await scheduler.cancel(nightly.id)

    async def listed(**request: Any) -> list[str]:
        page = await scheduler.list_tasks(**request)
        return [task.id for task in page.tasks]

    assert await listed(status=CANCELLED) == [nightly.id]
    assert await listed(status=QUEUED) == [hourly.id, nightly_web.id]
    assert await listed(label=["job=nightly"]) == [nightly.id, nightly_web.id]
    assert await listed(label=["job=nightly", "team=web"]) == [nightly_web.id]
    assert await listed(label=["job=nightly"], status=QUEUED) == [nightly_web.id]
    assert await listed(label=["job=weekly"]) == []

    error = await rpc_error(listed(label=["nightly"]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("label: ")


async def test_same_idempotency_key_returns_the_first_task(
    scheduler: Scheduler, queue: Queue
) -> None:
    first = await scheduler.create(idempotencyKey="nightly-2025-01-01")
    again = await scheduler.create(idempotencyKey="nightly-2025-01-01")
    other_spec = await rpc_error(scheduler.create(idempotencyKey="nightly-2025-01-01", region="eu"))
    other_tenant = await scheduler.create(
        metadata=scheduler.auth("tasks.write", tenant="someone-else"),
        idempotencyKey="nightly-2025-01-01",
    )

    assert again == first
    assert (other_spec.code(), other_spec.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        f"idempotencyKey: 'nightly-2025-01-01' was used by task {first.id} with a different spec",
    )
    assert other_tenant.id != first.id
    assert await queue.subjects() == {task_subject("", Priority.NORMAL): 2}


async def test_another_tenants_task_is_not_found(scheduler: Scheduler) -> None:
    task = await scheduler.create()
    stranger = scheduler.auth("tasks.read", "tasks.write", tenant="someone-else")

    for call in (
        scheduler.get(task.id, stranger),
        scheduler.cancel(task.id, stranger),
    ):
        assert (await rpc_error(call)).code() == grpc.StatusCode.NOT_FOUND
    watch = scheduler.watch(task.id, stranger)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await anext(watch)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await scheduler.list_tasks(metadata=stranger)
    assert list(listed.tasks) == []
    assert (await scheduler.get(task.id)).status == QUEUED


async def test_malformed_task_id_is_not_found(scheduler: Scheduler) -> None:
    for task_id in ("*", "a b", "events.>", "0" * 33):
        error = await rpc_error(scheduler.get(task_id))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        watch = scheduler.watch(task_id)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await anext(watch)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    error = await rpc_error(scheduler.get(""))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "id: is required")


async def test_script_needs_the_script_scope(scheduler: Scheduler, queue: Queue) -> None:
    script: dict[str, Any] = {"screenshot": None, "script": {"source": "() => document.title"}}

    error = await rpc_error(scheduler.create(metadata=scheduler.auth("tasks.write"), **script))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "script" in (error.details() or "")
    assert await queue.subjects() == {}

    task = await scheduler.create(metadata=scheduler.auth("tasks.write", "script"), **script)
    assert task.status == QUEUED


async def test_methods_need_their_scopes(scheduler: Scheduler) -> None:
    task = await scheduler.create()
    reader, writer = scheduler.auth("tasks.read"), scheduler.auth("tasks.write")

    denied = [
        scheduler.create(metadata=reader),
        scheduler.cancel(task.id, reader),
        scheduler.get(task.id, writer),
        scheduler.list_tasks(metadata=writer),
    ]
    for call in denied:
        assert (await rpc_error(call)).code() == grpc.StatusCode.PERMISSION_DENIED


async def test_invalid_spec_is_refused_and_nothing_is_written(
    scheduler: Scheduler, queue: Queue
) -> None:
    for bad in ({"timeoutMs": 5}, {"url": "ftp://example.com/"}):
        error = await rpc_error(scheduler.create(**bad))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("url: ")

    listed = await scheduler.list_tasks()
    assert list(listed.tasks) == []
    assert await queue.subjects() == {}


async def test_invalid_timeout_names_the_field(scheduler: Scheduler) -> None:
    error = await rpc_error(scheduler.create(timeoutMs=5))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "timeoutMs: must be 0 or between 1000 and 300000, got 5"


async def test_metrics_count_tasks_and_time_their_queue_and_run(
    scheduler: Scheduler, queue: Queue
) -> None:
    created = sample("farm_tasks_created_total", priority="low")
    succeeded = sample("farm_tasks_finished_total", status="succeeded")
    cancelled = sample("farm_tasks_finished_total", status="cancelled")
    queued = sample("farm_task_queue_seconds_count", priority="low")
    ran = sample("farm_task_run_seconds_count")
    lived = sample("farm_task_end_to_end_seconds_count", priority="low", status="succeeded")
    lived_cancelled = sample(
        "farm_task_end_to_end_seconds_count", priority="low", status="cancelled"
    )

    task = await scheduler.create(priority="PRIORITY_LOW")
    await scheduler.create(priority="PRIORITY_LOW", idempotencyKey="same")
    await scheduler.create(priority="PRIORITY_LOW", idempotencyKey="same")
    other = await scheduler.create(priority="PRIORITY_LOW")
    await scheduler.cancel(other.id)
    await queue.report(task.id, RUNNING)
    await queue.report(task.id, SUCCEEDED, result=succeeded_result())
    await until(scheduler, task.id, SUCCEEDED)
    # The success's counts are made in one go, just after GetTask can see it.
    await counted("farm_tasks_finished_total", succeeded + 1, status="succeeded")

    assert sample("farm_tasks_created_total", priority="low") == created + 3
    assert sample("farm_tasks_finished_total", status="cancelled") == cancelled + 1
    assert sample("farm_task_queue_seconds_count", priority="low") == queued + 1
    assert sample("farm_task_run_seconds_count") == ran + 1
    end_to_end = ("farm_task_end_to_end_seconds_count", "low")
    assert sample(end_to_end[0], priority=end_to_end[1], status="succeeded") == lived + 1
    assert sample(end_to_end[0], priority=end_to_end[1], status="cancelled") == lived_cancelled + 1
