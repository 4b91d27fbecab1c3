"""A task that ends or moves while queued takes its WorkItem out of FARM_TASKS.

On a subject no agent pulls (a region without agents) nobody else would: the
message would stay for the stream's max age, as pending work in the fleet status.
A delete NATS did not take (it was down) is kept in SQL and retried until done.
"""

import dataclasses
import datetime as dt

import nats
import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import func, insert, select

from farm.admin.v1 import admin_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.db import utcnow
from farm_core.queue import TASK_STREAM, Priority, task_subject
from farm_core.timestamps import to_timestamp
from farm_scheduler.queue_messages import deletes
from farm_scheduler.routing.fallback import RegionFallback
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.scheduler.admin_calls import operator
from tests.integration.scheduler.agent_side import RPC_TIMEOUT, Queue
from tests.integration.scheduler.conftest import (
    BOTH_DATABASES,
    CANCELLED,
    FAILED,
    QUEUED,
    Scheduler,
    StartScheduler,
    until,
)

pytestmark = [pytest.mark.integration, BOTH_DATABASES]

NOWHERE = "nowhere"
"""A region no agent serves: no consumer pulls its subjects."""


async def stored_sequence(queue: Queue, subject: str, message_id: str) -> int:
    """The FARM_TASKS sequence of the message with `message_id`, the last one on `subject`."""
    message = await queue.js.get_last_msg(TASK_STREAM, subject)
    assert (message.headers or {}).get("Nats-Msg-Id") == message_id
    assert message.seq is not None
    return message.seq


async def held(queue: Queue, sequence: int) -> bool:
    """Whether FARM_TASKS still holds the message at `sequence`."""
    try:
        await queue.js.get_msg(TASK_STREAM, seq=sequence)
    except NotFoundError:
        return False
    return True


async def pending_nowhere(scheduler: Scheduler) -> int:
    """The pending tasks GetFleetStatus (`farm status`) shows for NOWHERE's normal queue."""
    fleet: admin_pb2.FleetStatus = await scheduler.admin.GetFleetStatus(
        admin_pb2.GetFleetStatusRequest(), metadata=operator(scheduler), timeout=RPC_TIMEOUT
    )
    return sum(
        each.pending
        for each in fleet.queues
        if (each.region, each.priority) == (NOWHERE, tasks_pb2.PRIORITY_NORMAL)
    )


async def test_a_task_cancelled_while_queued_where_no_agent_serves_leaves_no_message(
    scheduler: Scheduler, queue: Queue
) -> None:
    subject = task_subject(NOWHERE, Priority.NORMAL)
    cancelled = await scheduler.create(region=NOWHERE)
    cancelled_sequence = await stored_sequence(queue, subject, cancelled.id)
    waiting = await scheduler.create(region=NOWHERE)
    waiting_sequence = await stored_sequence(queue, subject, waiting.id)
    assert await pending_nowhere(scheduler) == 2

    assert (await scheduler.cancel(cancelled.id)).status == CANCELLED

    assert not await held(queue, cancelled_sequence)
    assert await held(queue, waiting_sequence)  # still to run: its message stays
    assert await queue.subjects() == {subject: 1}
    assert await pending_nowhere(scheduler) == 1
    assert await scheduler.status(waiting.id) == QUEUED


async def test_a_task_past_its_deadline_while_queued_where_no_agent_serves_leaves_no_message(
    scheduler: Scheduler, queue: Queue
) -> None:
    subject = task_subject(NOWHERE, Priority.NORMAL)
    deadline = to_timestamp(utcnow() + dt.timedelta(seconds=1)).ToJsonString()
    expiring = await scheduler.create(region=NOWHERE, deadline=deadline)
    expiring_sequence = await stored_sequence(queue, subject, expiring.id)
    waiting = await scheduler.create(region=NOWHERE)
    waiting_sequence = await stored_sequence(queue, subject, waiting.id)

    expired = await until(scheduler, expiring.id, FAILED)
    assert expired.error.code == "DEADLINE_EXCEEDED"

    async def deleted() -> bool:
        return not await held(queue, expiring_sequence)

    await assert_eventually(deleted, message="the expired task's message is still held")
    assert await held(queue, waiting_sequence)
    assert await queue.subjects() == {subject: 1}
    assert await pending_nowhere(scheduler) == 1


async def test_a_sequence_that_holds_another_tasks_message_deletes_nothing(
    scheduler: Scheduler, queue: Queue
) -> None:
    # As after the stream was made again, which numbers its messages from 1.
    subject = task_subject(NOWHERE, Priority.NORMAL)
    ended = await scheduler.create(region=NOWHERE)
    other = await scheduler.create(region=NOWHERE)
    other_sequence = await stored_sequence(queue, subject, other.id)
    publisher = scheduler.service.publisher
    assert publisher is not None
    record = await scheduler.service.store.get(scheduler.tenant, ended.id)
    assert record.published and record.queue_sequence is not None
    astray = dataclasses.replace(record, queue_sequence=other_sequence)

    assert not await publisher.queue_messages.ended(astray)

    assert await held(queue, other_sequence)
    assert await queue.subjects() == {subject: 2}


async def test_a_task_the_region_fallback_moves_leaves_no_message_in_its_preferred_region(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    # The loop does not run by itself: the test makes its round, once the task is queued.
    scheduler = await start_scheduler(
        region_routes="*.eu=eu", region_fallback_interval_seconds=3600
    )
    fallback = scheduler.service.fallback
    assert isinstance(fallback, RegionFallback)
    preferred, anywhere = task_subject("eu", Priority.NORMAL), task_subject("", Priority.NORMAL)
    task = await scheduler.create(url="https://shop.eu/")
    preferred_sequence = await stored_sequence(queue, preferred, task.id)

    assert await fallback.fall_back() == 1  # no agent of eu is live: it moves at once

    assert not await held(queue, preferred_sequence)
    await stored_sequence(queue, anywhere, f"{task.id}.any")
    assert await queue.subjects() == {anywhere: 1}
    assert await scheduler.status(task.id) == QUEUED


async def test_a_delete_that_failed_while_nats_was_down_is_retried_once_it_is_back(
    fresh_nats_server: NatsServer, start_scheduler: StartScheduler
) -> None:
    scheduler = await start_scheduler(
        NATS_URL=fresh_nats_server.url, FARM_NATS_REQUEST_TIMEOUT_SECONDS=1
    )
    store = scheduler.service.store

    async def kept_deletes() -> int:
        async with store.engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(deletes)) or 0)

    client = await nats.connect(
        fresh_nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    try:
        js = client.jetstream()
        task = await scheduler.create(region=NOWHERE)
        message = await js.get_last_msg(TASK_STREAM, task_subject(NOWHERE, Priority.NORMAL))
        assert (message.headers or {}).get("Nats-Msg-Id") == task.id

        fresh_nats_server.process.stop(timeout=5)
        assert (await scheduler.cancel(task.id)).status == CANCELLED
        assert await kept_deletes() == 1
        fresh_nats_server.process.start()
        await assert_eventually(lambda: client.is_connected, within=30, message="no reconnect")

        async def retried() -> bool:
            try:
                await js.get_msg(TASK_STREAM, seq=message.seq)
            except NotFoundError:
                return await kept_deletes() == 0
            return False

        await assert_eventually(
            retried, within=30, message="the cancelled task's message is still in the stream"
        )
    finally:
        await client.close()


async def test_a_delete_jetstream_keeps_refusing_holds_up_no_other(
    hand_run_scheduler: Scheduler, queue: Queue
) -> None:
    subject = task_subject(NOWHERE, Priority.NORMAL)
    refused_task = await hand_run_scheduler.create(region=NOWHERE)
    refused_sequence = await stored_sequence(queue, subject, refused_task.id)
    store = hand_run_scheduler.service.store
    publisher = hand_run_scheduler.service.publisher
    assert publisher is not None
    # Kept as after NATS was away: the refused one first, then one whose message is gone.
    async with store.engine.begin() as connection:
        for task_id, sequence, minutes_ago in (
            (refused_task.id, refused_sequence, 2),
            ("0" * 32, refused_sequence + 1000, 1),
        ):
            await connection.execute(
                insert(deletes).values(
                    task_id=task_id,
                    sequence=sequence,
                    message_id=None,
                    try_time=utcnow() - dt.timedelta(minutes=minutes_ago),
                )
            )
    info = await queue.js.stream_info(TASK_STREAM)
    await queue.js.update_stream(dataclasses.replace(info.config, deny_delete=True))

    assert await publisher.queue_messages.retry_pending() == 0  # refused: to the back
    assert await publisher.queue_messages.retry_pending() == 1  # the other one goes through

    async with store.engine.connect() as connection:
        kept = (await connection.execute(select(deletes.c.task_id))).scalars().all()
    assert kept == [refused_task.id]
    assert await held(queue, refused_sequence)
