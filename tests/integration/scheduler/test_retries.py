"""Retries, dead letters, requeues and deadlines over gRPC, on the real nats-server and SQLite.

The test plays the agent: it reports each attempt as farm_agent does.
"""

import asyncio
import contextlib
import datetime as dt

import grpc
import pytest
from nats.js.errors import KeyNotFoundError
from prometheus_client import REGISTRY

from farm.admin.v1 import admin_pb2
from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.db import utcnow
from farm_core.queue import DEAD_STREAM, TASK_STREAM, Priority, dead_subject, task_subject
from farm_core.shared_buckets import cancel_bucket
from farm_core.timestamps import from_timestamp, to_timestamp
from tests.helpers import assert_eventually
from tests.integration.scheduler.admin_calls import ADMIN, requeue
from tests.integration.scheduler.agent_side import RPC_TIMEOUT, Queue
from tests.integration.scheduler.conftest import (
    FAILED,
    LONG_AGO,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TIMEOUT,
    Scheduler,
    StartScheduler,
    rpc_error,
    stored_spec,
    succeeded_result,
    until,
)

pytestmark = pytest.mark.integration

SELECTOR = tasks_pb2.TaskError(code="SELECTOR_NOT_FOUND", message="#missing")


async def retry(
    queue: Queue, task_id: str, attempt: int, agent_id: str | None = None
) -> dt.datetime:
    """Reports attempt `attempt` (of `agent_id`, if given) as failed with a retryable
    error; the retry time it gave."""
    retry_time = (utcnow() + dt.timedelta(seconds=30)).replace(microsecond=0)
    await queue.report(
        task_id, QUEUED, attempt, agent_id=agent_id, error=TIMEOUT, retry_time=retry_time
    )
    return retry_time


async def fail_after_retry(scheduler: Scheduler, queue: Queue) -> tasks_pb2.Task:
    """A task with two attempts: a retryable failure, then a final one. The task, FAILED."""
    task = await scheduler.create(maxAttempts=2)
    await queue.report(task.id, RUNNING, 1)
    await until(scheduler, task.id, RUNNING, 1)
    await retry(queue, task.id, 1)
    await until(scheduler, task.id, QUEUED, 1)
    await queue.report(task.id, RUNNING, 2)
    await until(scheduler, task.id, RUNNING, 2)
    await queue.report(task.id, FAILED, 2, error=SELECTOR)
    return await until(scheduler, task.id, FAILED, 2)


async def dead_letters(scheduler: Scheduler, tenant: str | None = None) -> list[str]:
    """The task ids ListDeadLetters shows an admin of the test's tenant (or `tenant`)."""
    page = await scheduler.admin.ListDeadLetters(
        admin_pb2.ListDeadLettersRequest(),
        metadata=scheduler.auth(ADMIN, tenant=tenant),
        timeout=RPC_TIMEOUT,
    )
    return [letter.task.id for letter in page.dead_letters]


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_two_retryable_failures_then_success_keep_three_attempts(
    scheduler: Scheduler, queue: Queue
) -> None:
    retried = sample("farm_tasks_retried_total")
    task = await scheduler.create()
    watch = aiter(scheduler.watch(task.id))
    assert (await anext(watch)).status == QUEUED

    seen: list[tasks_pb2.TaskEvent] = []
    for attempt in (1, 2):
        await queue.report(task.id, RUNNING, attempt, agent_id=f"agent-{attempt}")
        seen.append(await anext(watch))
        retry_time = await retry(queue, task.id, attempt, f"agent-{attempt}")
        seen.append(await anext(watch))
        assert from_timestamp(seen[-1].task.retry_time) == retry_time
    await queue.report(task.id, RUNNING, 3, agent_id="agent-3")
    seen.append(await anext(watch))
    await queue.report(task.id, SUCCEEDED, 3, agent_id="agent-3", result=succeeded_result())
    seen.append(await anext(watch))

    assert [(event.status, event.task.attempts) for event in seen] == [
        (RUNNING, 1),
        (QUEUED, 1),
        (RUNNING, 2),
        (QUEUED, 2),
        (RUNNING, 3),
        (SUCCEEDED, 3),
    ]
    # A retry is told at the moment the attempt failed, with that attempt's error.
    assert seen[1].time == seen[1].task.attempt_history[0].finish_time
    done = await scheduler.get(task.id)
    assert done.result == succeeded_result() and not done.HasField("error")
    assert not done.HasField("retry_time")
    history = [(each.attempt, each.agent_id, each.error) for each in done.attempt_history]
    assert history == [
        (1, "agent-1", TIMEOUT),
        (2, "agent-2", TIMEOUT),
        (3, "agent-3", tasks_pb2.TaskError()),
    ]
    assert all(
        each.HasField("start_time") and each.HasField("finish_time")
        for each in done.attempt_history
    )
    listed = await scheduler.list_tasks()
    assert list(listed.tasks) == [done]
    assert sample("farm_tasks_retried_total") == retried + 2


async def test_run_task_waits_across_retries(scheduler: Scheduler, queue: Queue) -> None:
    run = asyncio.ensure_future(scheduler.run())
    item = await queue.take()
    await queue.report(item.task_id, RUNNING, 1)
    await retry(queue, item.task_id, 1)
    await until(scheduler, item.task_id, QUEUED, 1)
    assert not run.done()
    await queue.report(item.task_id, RUNNING, 2)
    await queue.report(item.task_id, SUCCEEDED, 2, result=succeeded_result())

    task = await asyncio.wait_for(run, RPC_TIMEOUT)

    assert (task.status, task.attempts, len(task.attempt_history)) == (SUCCEEDED, 2, 2)


async def test_last_attempt_failing_makes_a_dead_letter(scheduler: Scheduler, queue: Queue) -> None:
    counted = sample("farm_dead_letters_total")

    task = await fail_after_retry(scheduler, queue)

    assert task.error == SELECTOR
    assert [each.error.code for each in task.attempt_history] == ["TIMEOUT", "SELECTOR_NOT_FOUND"]
    message = await queue.dead_letter(task.id)
    assert (message.headers or {}).get("Nats-Msg-Id") == f"{task.id}.dead.2"
    letter = queue_pb2.DeadLetter.FromString(message.data or b"")
    assert (letter.item.task_id, letter.item.tenant, letter.item.spec) == (
        task.id,
        scheduler.tenant,
        task.spec,
    )
    assert (letter.error, letter.attempts, letter.dead_time) == (SELECTOR, 2, task.finish_time)
    assert sample("farm_dead_letters_total") == counted + 1

    page = await scheduler.admin.ListDeadLetters(
        admin_pb2.ListDeadLettersRequest(), metadata=scheduler.auth(ADMIN), timeout=RPC_TIMEOUT
    )
    assert [(each.task, each.dead_time) for each in page.dead_letters] == [(task, task.finish_time)]
    assert await dead_letters(scheduler, tenant="someone-else") == []


async def test_requeued_dead_letter_is_published_again_and_continues_its_attempts(
    scheduler: Scheduler, queue: Queue
) -> None:
    failed = await fail_after_retry(scheduler, queue)
    first_item = await queue.take()
    assert first_item.task_id == failed.id

    requeued = await requeue(scheduler, failed.id)

    assert (requeued.status, requeued.attempts, len(requeued.attempt_history)) == (QUEUED, 2, 2)
    assert not requeued.HasField("error") and not requeued.HasField("finish_time")
    assert await dead_letters(scheduler) == []
    message = await queue.js.get_last_msg(TASK_STREAM, task_subject("", Priority.NORMAL))
    assert (message.headers or {}).get("Nats-Msg-Id") == f"{failed.id}.r1"
    assert (await queue.take()).task_id == failed.id

    # The agent counts the attempts of the new message from 1 again.
    await queue.report(failed.id, RUNNING, 1, agent_id="agent-again")
    await until(scheduler, failed.id, RUNNING, 3)
    await queue.report(failed.id, SUCCEEDED, 1, agent_id="agent-again", result=succeeded_result())
    done = await until(scheduler, failed.id, SUCCEEDED, 3)
    assert [(each.attempt, each.agent_id) for each in done.attempt_history] == [
        (1, queue.agent_id),
        (2, queue.agent_id),
        (3, "agent-again"),
    ]


async def test_requeue_of_a_task_that_has_not_failed_is_refused(
    scheduler: Scheduler, queue: Queue
) -> None:
    task = await scheduler.create()

    error = await rpc_error(requeue(scheduler, task.id))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "TASK_STATUS_QUEUED" in (error.details() or "")
    assert await queue.subjects() == {task_subject("", Priority.NORMAL): 1}
    stranger = await rpc_error(requeue(scheduler, task.id, tenant="someone-else"))
    assert stranger.code() == grpc.StatusCode.NOT_FOUND
    malformed = await rpc_error(requeue(scheduler, "dead.>"))
    assert malformed.code() == grpc.StatusCode.NOT_FOUND
    empty = await rpc_error(requeue(scheduler, ""))
    assert (empty.code(), empty.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "taskId: is required",
    )


async def test_dead_letter_held_back_while_nats_is_down_is_published_later(
    hand_run_scheduler: Scheduler, queue: Queue
) -> None:
    scheduler = hand_run_scheduler
    store, tenant = scheduler.service.store, scheduler.tenant
    spec = stored_spec()
    record, _ = await store.create(tenant, spec)
    # Applied straight to SQL, as if NATS went away before the dead letter could go out;
    # failed longer ago than the grace.
    failure = queue_pb2.AgentEvent(
        task_id=record.id, status=FAILED, agent_id="a", attempt=1, error=SELECTOR
    )
    change = await store.apply_event(failure, utcnow() - LONG_AGO)
    assert change is not None and change.after.dead_letter_pending
    republisher = scheduler.service.republisher
    assert republisher is not None

    assert await republisher.republish_dead_letters() == 1
    assert await republisher.republish_dead_letters() == 0

    message = await queue.js.get_last_msg(DEAD_STREAM, dead_subject(record.id))
    assert (message.headers or {}).get("Nats-Msg-Id") == f"{record.id}.dead.0"
    assert not (await store.get(tenant, record.id)).dead_letter_pending


async def test_task_still_queued_at_its_deadline_fails_and_is_never_started(
    scheduler: Scheduler, queue: Queue
) -> None:
    deadline = utcnow() + dt.timedelta(seconds=1)
    task = await scheduler.create(deadline=to_timestamp(deadline).ToJsonString())
    assert from_timestamp(task.spec.deadline) == deadline

    expired = await until(scheduler, task.id, FAILED, 0)

    assert expired.error.code == "DEADLINE_EXCEEDED"
    assert from_timestamp(expired.finish_time) >= deadline
    bucket = await cancel_bucket(queue.js)

    async def cancel_noted() -> bool:
        with contextlib.suppress(KeyNotFoundError):
            return (await bucket.get(task.id)).key == task.id
        return False

    await assert_eventually(cancel_noted, message="the task was not put in the cancel bucket")
    assert await dead_letters(scheduler) == [task.id]
    await queue.dead_letter(task.id)
    # An agent that took the task before the deadline reports too late: it stays failed.
    await queue.report(task.id, RUNNING, 1)
    await assert_eventually(queue.events_applied, message="events not applied")
    assert await scheduler.get(task.id) == expired
    # A task whose deadline has passed cannot be queued again.
    error = await rpc_error(requeue(scheduler, task.id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "deadline" in (error.details() or "")


async def test_run_task_returns_by_its_deadline(start_scheduler: StartScheduler) -> None:
    scheduler = await start_scheduler(run_deadline_grace_seconds=1)
    deadline = utcnow() + dt.timedelta(seconds=1)

    task = await scheduler.run(deadline=to_timestamp(deadline).ToJsonString())

    assert (task.status, task.error.code) == (FAILED, "DEADLINE_EXCEEDED")


async def test_deadline_in_the_past_is_refused(scheduler: Scheduler, queue: Queue) -> None:
    past = to_timestamp(utcnow() - dt.timedelta(minutes=1)).ToJsonString()

    error = await rpc_error(scheduler.create(deadline=past))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("deadline: must be in the future")
    assert await queue.subjects() == {}


async def test_idempotency_key_names_its_first_task_only_within_the_window(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    scheduler = await start_scheduler(idempotency_window_seconds=1)
    first = await scheduler.create(idempotencyKey="nightly")
    assert (await scheduler.create(idempotencyKey="nightly")).id == first.id

    async def new_task_after_the_window() -> bool:
        return (await scheduler.create(idempotencyKey="nightly")).id != first.id

    await assert_eventually(new_task_after_the_window, message="the key never named a new task")
    second = await scheduler.create(idempotencyKey="nightly")
    assert second.id != first.id
    assert await queue.subjects() == {task_subject("", Priority.NORMAL): 2}
