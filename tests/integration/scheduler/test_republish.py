"""Tasks and dead letters held back while NATS is unreachable are published once it is back."""

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.db import utcnow
from farm_core.queue import DEAD_STREAM, TASK_STREAM, Priority, dead_subject, task_subject
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import (
    FAILED,
    LONG_AGO,
    Scheduler,
    StartScheduler,
    backdate,
    rpc_error,
    stored_spec,
)
from tests.tcp_link import CuttableLink

pytestmark = pytest.mark.integration

# A publish behind a cut link gives up, and the republisher takes its task, sooner than
# with the fixture's 1 s and 2 s; the grace stays above the publish timeout, as it must.
# A fleet-gauges round begun while the link was cut holds up the scheduler's stop until
# its NATS requests time out: 1 s, not the default 5 s.
QUICK_REPUBLISH = {
    "publish_timeout_seconds": 0.3,
    "republish_grace_seconds": 0.5,
    "FARM_NATS_REQUEST_TIMEOUT_SECONDS": 1,
}


@pytest.fixture
async def link(nats_server: NatsServer) -> AsyncIterator[CuttableLink]:
    """A mended link to the session's nats-server; cut for good afterwards.

    A test asks for it before start_scheduler: fixtures end in reverse, so its
    schedulers stop while NATS is still reachable (behind a cut link, each stop waited
    out its NATS timeouts, some 3.5 s).
    """
    link = CuttableLink(int(nats_server.url.rsplit(":", 1)[1]))
    await link.mend()
    try:
        yield link
    finally:
        await link.cut()


async def test_task_accepted_while_nats_is_unreachable_is_published_later(
    link: CuttableLink, start_scheduler: StartScheduler, queue: Queue
) -> None:
    scheduler = await start_scheduler(NATS_URL=link.url, **QUICK_REPUBLISH)
    await link.cut()

    task = await scheduler.create()

    assert task.status == tasks_pb2.TASK_STATUS_QUEUED
    assert await queue.subjects() == {}
    stored = await scheduler.service.store.get(scheduler.tenant, task.id)
    assert not stored.published

    await link.mend()

    async def published() -> bool:
        record = await scheduler.service.store.get(scheduler.tenant, task.id)
        return record.published

    await assert_eventually(published, within=15, message="the task was not published")
    assert await queue.subjects() == {task_subject("", Priority.NORMAL): 1}
    message = await queue.js.get_last_msg(TASK_STREAM, task_subject("", Priority.NORMAL))
    assert (message.headers or {}).get("Nats-Msg-Id") == task.id


async def test_run_task_while_nats_is_stopped_fails_at_once_naming_the_queue(
    fresh_nats_server: NatsServer, start_scheduler: StartScheduler
) -> None:
    scheduler = await start_scheduler(NATS_URL=fresh_nats_server.url)
    publisher = scheduler.service.publisher
    assert publisher is not None
    # The real nats-server, stopped by its PID (SIGTERM).
    fresh_nats_server.process.stop(timeout=10)
    await assert_eventually(lambda: not publisher.connected(), within=10)
    # timeoutMs 60 s: waited out, RunTask would outlast the call's own 10 s deadline.
    error = await rpc_error(scheduler.run(timeoutMs=60_000))
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    assert error.details().startswith(
        f"NATS at {fresh_nats_server.url} is unreachable: the task queue ({TASK_STREAM}) "
        "cannot take the task"
    ), error.details()
    assert "nothing was stored" in error.details()
    assert list((await scheduler.list_tasks()).tasks) == []


async def test_run_task_while_nats_is_stalled_fails_within_the_publish_timeout_naming_the_task(
    fresh_nats_server: NatsServer, start_scheduler: StartScheduler
) -> None:
    scheduler = await start_scheduler(NATS_URL=fresh_nats_server.url, **QUICK_REPUBLISH)
    publisher = scheduler.service.publisher
    assert publisher is not None
    # The real nats-server, stopped with SIGSTOP: it keeps its connections and answers
    # nothing, so the client still counts as connected.
    async with fresh_nats_server.stalled():
        assert publisher.connected()
        # CreateTask's publish times out (0.3 s here): its task is answered QUEUED, for
        # the republisher to publish once NATS answers.
        created = await scheduler.create()
        assert created.status == tasks_pb2.TASK_STATUS_QUEUED
        # timeoutMs 60 s: waited out, RunTask would outlast the call's own 10 s deadline.
        error = await rpc_error(scheduler.run(timeoutMs=60_000))
        [task] = [task for task in (await scheduler.list_tasks()).tasks if task.id != created.id]
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error
        assert error.details().startswith(
            f"NATS at {fresh_nats_server.url} did not take the task within 0.3 s: the task "
            f"queue ({TASK_STREAM}) cannot take the task, so RunTask does not wait for it; "
            f"task {task.id} stays QUEUED"
        ), error.details()
        # As CreateTask's would: stored, and published once NATS answers.
        assert task.status == tasks_pb2.TASK_STATUS_QUEUED


async def test_republisher_publishes_each_unpublished_queued_task_once(
    hand_run_scheduler: Scheduler, queue: Queue
) -> None:
    scheduler = hand_run_scheduler
    store, tenant = scheduler.service.store, scheduler.tenant
    spec = stored_spec()
    # Stored but never published, as when NATS refused CreateTask's publish.
    waiting, _ = await store.create(tenant, spec)
    cancelled, _ = await store.create(tenant, spec)
    await store.cancel(tenant, cancelled.id)
    for record in (waiting, cancelled):
        await backdate(store, record.id)
    republisher = scheduler.service.republisher
    assert republisher is not None

    assert await republisher.republish_pending() == 1
    assert await republisher.republish_pending() == 0

    assert await queue.subjects() == {task_subject("", Priority.NORMAL): 1}
    message = await queue.js.get_last_msg(TASK_STREAM, task_subject("", Priority.NORMAL))
    assert (message.headers or {}).get("Nats-Msg-Id") == waiting.id
    assert (await store.get(tenant, waiting.id)).published


async def test_republisher_leaves_a_young_task_another_replica_is_publishing(
    link: CuttableLink, start_scheduler: StartScheduler, queue: Queue
) -> None:
    # The create stores the task, publishes it and marks it published once JetStream
    # acknowledges: in between, the task is unpublished in SQL but not left behind.
    creator = await start_scheduler(NATS_URL=link.url, **HELD_ACKS)
    other = await start_scheduler(republish_interval_seconds=3600, republish_grace_seconds=60)
    republisher = other.service.republisher
    assert republisher is not None
    link.hold_answers()
    creating = asyncio.create_task(creator.create())
    await assert_eventually(
        lambda: stored_unpublished(creator), within=10, message="the task was not stored"
    )

    assert await republisher.republish_pending() == 0

    link.release_answers()
    task = await creating
    assert (await creator.service.store.get(creator.tenant, task.id)).published
    assert await queue.subjects() == {task_subject("", Priority.NORMAL): 1}


async def test_republisher_leaves_a_task_its_replica_is_publishing_past_the_grace(
    link: CuttableLink, start_scheduler: StartScheduler, queue: Queue
) -> None:
    # The grace does not cover every publish: a create whose SQL write took longer, or
    # a task the region fallback has just moved, is old and still in its publish's hands.
    scheduler = await start_scheduler(NATS_URL=link.url, **HELD_ACKS)
    republisher = scheduler.service.republisher
    assert republisher is not None
    link.hold_answers()
    creating = asyncio.create_task(scheduler.create())
    await assert_eventually(
        lambda: link.times_sent(TASK_PUBLISH) == 1, within=10, message="the task was not sent"
    )
    store = scheduler.service.store
    [stored] = await store.unpublished(10, utcnow() + LONG_AGO)
    await backdate(store, stored.id)
    republishing = asyncio.create_task(republisher.republish_pending())
    await assert_eventually(
        lambda: republishing.done() or link.times_sent(TASK_PUBLISH) > 1,
        within=10,
        message="the round neither ended nor sent",
    )
    link.release_answers()

    task = await creating
    assert await republishing == 0
    assert link.times_sent(TASK_PUBLISH) == 1
    assert (await scheduler.service.store.get(scheduler.tenant, task.id)).published
    assert await queue.subjects() == {task_subject("", Priority.NORMAL): 1}


async def failing_with_its_dead_letter_in_flight(
    scheduler: Scheduler, link: CuttableLink, failed_at: dt.datetime | None = None
) -> tuple[str, asyncio.Task[bool]]:
    """A task of `scheduler` failed (`failed_at`, default now), its dead letter sent unacked.

    The dead letter goes through the held `link`.
    The failure is applied to SQL as the event consumer does; then the publish the
    change starts (ChangeReporter), left running. The task's id and that publish.
    """
    store, publisher = scheduler.service.store, scheduler.service.publisher
    assert publisher is not None
    record, _ = await store.create(scheduler.tenant, stored_spec())
    failure = queue_pb2.AgentEvent(
        task_id=record.id,
        status=FAILED,
        agent_id="a",
        attempt=1,
        error=tasks_pb2.TaskError(code="SELECTOR_NOT_FOUND", message="#missing"),
    )
    change = await store.apply_event(failure, failed_at or utcnow())
    assert change is not None and change.after.dead_letter_pending
    link.hold_answers()
    publishing = asyncio.create_task(publisher.publish_dead_letter(change.after))
    dead_publish = dead_publish_of(record.id)
    await assert_eventually(
        lambda: link.times_sent(dead_publish) == 1, within=10, message="the letter was not sent"
    )
    return record.id, publishing


async def test_republisher_leaves_a_young_dead_letter_another_replica_is_publishing(
    link: CuttableLink, start_scheduler: StartScheduler, queue: Queue
) -> None:
    failer = await start_scheduler(NATS_URL=link.url, **HELD_ACKS)
    other = await start_scheduler(republish_interval_seconds=3600, republish_grace_seconds=60)
    republisher = other.service.republisher
    assert republisher is not None
    task_id, publishing = await failing_with_its_dead_letter_in_flight(failer, link)

    assert await republisher.republish_dead_letters() == 0

    link.release_answers()
    assert await publishing
    assert not (await failer.service.store.get(failer.tenant, task_id)).dead_letter_pending
    message = await queue.js.get_last_msg(DEAD_STREAM, dead_subject(task_id))
    assert (message.headers or {}).get("Nats-Msg-Id") == f"{task_id}.dead.0"


async def test_republisher_leaves_a_dead_letter_its_replica_is_publishing_past_the_grace(
    link: CuttableLink, start_scheduler: StartScheduler
) -> None:
    scheduler = await start_scheduler(NATS_URL=link.url, **HELD_ACKS)
    republisher = scheduler.service.republisher
    assert republisher is not None
    # A dead letter's dead time is its failing event's own: a late failure is past the grace.
    task_id, publishing = await failing_with_its_dead_letter_in_flight(
        scheduler, link, utcnow() - LONG_AGO
    )
    dead_publish = dead_publish_of(task_id)

    republishing = asyncio.create_task(republisher.republish_dead_letters())
    await assert_eventually(
        lambda: republishing.done() or link.times_sent(dead_publish) > 1,
        within=10,
        message="the round neither ended nor sent",
    )
    link.release_answers()

    assert await publishing
    assert await republishing == 0
    assert link.times_sent(dead_publish) == 1
    assert not (await scheduler.service.store.get(scheduler.tenant, task_id)).dead_letter_pending


HELD_ACKS = {
    "republish_interval_seconds": 3600,
    "publish_timeout_seconds": 60,
    "republish_grace_seconds": 61,
}
"""A scheduler whose publishes wait out acks the test holds back, its republisher run by hand."""


def dead_publish_of(task_id: str) -> bytes:
    """What a publish of the task's DeadLetter sends to nats-server (HPUB with headers)."""
    return f"PUB {dead_subject(task_id)} ".encode()


TASK_PUBLISH = f"PUB {task_subject('', Priority.NORMAL)} ".encode()
"""What a publish of a WorkItem sends to nats-server (HPUB with headers)."""


async def stored_unpublished(scheduler: Scheduler) -> bool:
    """Whether a task of the scheduler's database is stored and not marked published."""
    return bool(await scheduler.service.store.unpublished(10, utcnow() + dt.timedelta(hours=1)))


async def test_a_batch_accepted_while_nats_is_unreachable_is_published_later(
    link: CuttableLink, start_scheduler: StartScheduler, queue: Queue
) -> None:
    scheduler = await start_scheduler(NATS_URL=link.url, **QUICK_REPUBLISH)
    await link.cut()

    response = await scheduler.create_batch([stored_spec() for _ in range(3)])

    assert len(response.tasks) == 3
    assert await queue.subjects() == {}
    store = scheduler.service.store

    async def all_published() -> bool:
        records = [await store.get(scheduler.tenant, task.id) for task in response.tasks]
        return all(record.published for record in records)

    assert not await all_published()
    await link.mend()

    await assert_eventually(all_published, within=15, message="the batch was not published")
    assert await queue.subjects() == {task_subject("", Priority.NORMAL): 3}


async def test_a_publish_jetstream_refuses_ends_its_span_as_an_error(
    hand_run_scheduler: Scheduler, queue: Queue, recorded_spans: InMemorySpanExporter
) -> None:
    # The span of a pipelined publish ends with its acknowledgement, not when it is sent.
    await queue.js.delete_stream(TASK_STREAM)
    task = await hand_run_scheduler.create()

    def publish_spans() -> list[tuple[object, StatusCode]]:
        return [
            (span.attributes["farm.task_id"] if span.attributes else None, span.status.status_code)
            for span in recorded_spans.get_finished_spans()
            if span.name == "task.publish"
        ]

    await assert_eventually(lambda: bool(publish_spans()), within=5, message="no publish span")
    assert publish_spans() == [(task.id, StatusCode.ERROR)]
    stored = await hand_run_scheduler.service.store.get(hand_run_scheduler.tenant, task.id)
    assert not stored.published
