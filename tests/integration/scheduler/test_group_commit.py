"""Group commit of single creates: concurrent CreateTask calls of a tenant are written and
published in groups, and each caller still gets its own task, trace and refusal."""

import asyncio
from collections.abc import Awaitable, Callable

import grpc
import pytest
from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan
from prometheus_client import REGISTRY

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.queue import ALL_TASK_SUBJECTS, Priority, task_subject
from farm_core.quotas import TenantQuotas
from farm_core.trace_context import new_traceparent, span_context_of, trace_id_of
from farm_scheduler.batches import Accepted
from farm_scheduler.group_commit import CreateGroups
from farm_scheduler.records import TaskRecord
from tests.helpers import assert_eventually
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import (
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Scheduler,
    stored_spec,
    succeeded_result,
)

pytestmark = pytest.mark.integration

GROUPS = "farm_task_write_group_size"


def written() -> tuple[float, float]:
    """(transactions, tasks) written so far by this process's schedulers."""
    count = REGISTRY.get_sample_value(f"{GROUPS}_count") or 0.0
    total = REGISTRY.get_sample_value(f"{GROUPS}_sum") or 0.0
    return count, total


async def test_concurrent_creates_are_written_in_fewer_transactions_than_calls(
    scheduler: Scheduler, queue: Queue
) -> None:
    transactions_before, tasks_before = written()

    tasks = await asyncio.gather(*(scheduler.create() for _ in range(40)))

    transactions, total = written()
    assert total - tasks_before == 40
    assert transactions - transactions_before < 40
    assert len({task.id for task in tasks}) == 40
    assert {task.status for task in tasks} == {QUEUED}
    assert await queue.subjects() == {task_subject("", Priority.NORMAL): 40}
    store = scheduler.service.store
    assert all([(await store.get(scheduler.tenant, task.id)).published for task in tasks])


async def test_grouped_creates_each_keep_their_callers_trace(scheduler: Scheduler) -> None:
    service = scheduler.service
    assert service.publisher is not None
    groups = CreateGroups(service.store, service.publisher, max_group=1000)
    parents = [new_traceparent() for _ in range(20)]

    async def create_in(parent: str) -> Accepted:
        # As the server's tracing interceptor makes the caller's trace current.
        with trace.use_span(NonRecordingSpan(span_context_of(parent))):
            return await groups.create(scheduler.tenant, stored_spec(), None)

    accepted = await asyncio.gather(*(create_in(parent) for parent in parents))

    assert [outcome.record.trace_parent for outcome in accepted] == parents
    tasks = [await scheduler.get(outcome.record.id) for outcome in accepted]
    assert [task.trace_id for task in tasks] == [trace_id_of(parent) for parent in parents]


async def test_grouped_creates_each_get_their_own_answer_at_the_quota(
    scheduler: Scheduler,
) -> None:
    quotas = TenantQuotas(max_queued_tasks=7)
    keyed = [scheduler.create(quotas, idempotencyKey="same") for _ in range(5)]
    plain = [scheduler.create(quotas) for _ in range(15)]

    answers = await asyncio.gather(*keyed, *plain, return_exceptions=True)

    # The calls may reach the scheduler in any order: the keyed task is one of the seven
    # unless seven plain ones came first; every other create is refused for the quota.
    keyed_tasks = [task for task in answers[:5] if isinstance(task, tasks_pb2.Task)]
    assert len({task.id for task in keyed_tasks}) == (1 if keyed_tasks else 0)
    accepted = [task for task in answers[5:] if isinstance(task, tasks_pb2.Task)]
    assert len(accepted) == (6 if keyed_tasks else 7)
    refused = [answer for answer in answers if not isinstance(answer, tasks_pb2.Task)]
    assert all(
        isinstance(error, grpc.aio.AioRpcError)
        and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        for error in refused
    ), refused
    assert len((await scheduler.list_tasks(page_size=100)).tasks) == 7


async def test_a_groups_publishes_carry_each_callers_trace_and_none_for_untraced_callers(
    scheduler: Scheduler, queue: Queue
) -> None:
    service = scheduler.service
    assert service.publisher is not None
    groups = CreateGroups(service.store, service.publisher, max_group=1000)
    heard: dict[str, dict[str, str]] = {}

    async def hear(msg: Msg) -> None:
        heard[queue_pb2.WorkItem.FromString(msg.data).task_id] = dict(msg.headers or {})

    subscription = await queue.nc.subscribe(ALL_TASK_SUBJECTS, cb=hear)
    # Untraced callers first: their publishes pass nothing on, the traced ones still do.
    parents = ["", "", new_traceparent(), "", new_traceparent(), ""]

    async def create_in(parent: str) -> Accepted:
        if not parent:
            return await groups.create(scheduler.tenant, stored_spec(), None)
        with trace.use_span(NonRecordingSpan(span_context_of(parent))):
            return await groups.create(scheduler.tenant, stored_spec(), None)

    try:
        accepted = await asyncio.gather(*(create_in(parent) for parent in parents))
        await queue.nc.flush()
        await assert_eventually(lambda: len(heard) == len(parents), message="not all heard")
    finally:
        await subscription.unsubscribe()

    for outcome, parent in zip(accepted, parents, strict=True):
        headers = heard[outcome.record.id]
        assert headers.pop("Nats-Msg-Id") == outcome.record.id
        if parent:
            assert trace_id_of(headers["traceparent"]) == trace_id_of(parent)
        else:
            assert headers == {}


async def test_a_groups_answers_say_that_jetstream_took_their_tasks(scheduler: Scheduler) -> None:
    service = scheduler.service
    assert service.publisher is not None
    groups = CreateGroups(service.store, service.publisher, max_group=1000)

    accepted = await asyncio.gather(
        *(groups.create(scheduler.tenant, stored_spec(), None) for _ in range(5))
    )

    for outcome in accepted:
        stored = await service.store.get(scheduler.tenant, outcome.record.id)
        assert outcome.record.published and stored.published
        assert outcome.record.queue_sequence == stored.queue_sequence is not None


async def test_run_task_reads_its_task_only_to_follow_it(
    scheduler: Scheduler, queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = scheduler.service.store
    reads: list[str] = []
    real_get: Callable[[str, str], Awaitable[TaskRecord]] = store.get

    async def counted_get(tenant: str, task_id: str) -> TaskRecord:
        reads.append(task_id)
        return await real_get(tenant, task_id)

    # The API's reads of tasks all go through TaskStore.get (the watch's too).
    monkeypatch.setattr(store, "get", counted_get)
    run = asyncio.ensure_future(scheduler.run())
    item = await queue.take()
    await queue.report(item.task_id, RUNNING, 1)
    await queue.report(item.task_id, SUCCEEDED, 1, result=succeeded_result())

    task = await run

    assert task.status == SUCCEEDED
    # The create's commit told RunTask that JetStream took the task: the one read is the
    # watch's first (watchers here are handed the committed changes, and poll once a minute).
    assert reads == [task.id]
