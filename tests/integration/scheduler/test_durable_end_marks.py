"""An end mark NATS did not take outlives the scheduler that failed to write it.

A task cancelled while NATS is down must still be marked ended once NATS is back,
also when the scheduler restarted meanwhile: otherwise an agent that pulls the
task's queued message runs the cancelled task. The kept mark is in SQL, and the
next scheduler's republisher writes it. A RUNNING report of an ended task whose
mark is missing all the same writes the mark, whose cancel notice stops the attempt.
Real nats-server (stopped and started again by its process), SQLite and PostgreSQL.
"""

import asyncio
import json
import urllib.error
import urllib.request

import nats
import pytest
from nats.aio.msg import Msg
from sqlalchemy import func, select, update

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.queue import TASK_STREAM, cancel_subject
from farm_core.shared_buckets import cancel_bucket
from farm_scheduler.end_marks import pending_marks
from farm_scheduler.models import TaskRow
from farm_scheduler.queue_messages import deletes
from farm_scheduler.store import TaskStore
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.scheduler.agent_side import RPC_TIMEOUT, Queue
from tests.integration.scheduler.conftest import (
    BOTH_DATABASES,
    CANCELLED,
    RUNNING,
    Scheduler,
    StartScheduler,
)
from tests.integration.scheduler.end_marks import end_mark, until_marked

pytestmark = [pytest.mark.integration, BOTH_DATABASES]

NOWHERE = "nowhere"
"""A region no agent serves: the message stays unless an agent-free path removes it."""


async def count(store: TaskStore, table: object) -> int:
    """Rows in one of the scheduler's tables of kept work."""
    async with store.engine.connect() as connection:
        query = select(func.count()).select_from(table)  # type: ignore[arg-type]
        return int(await connection.scalar(query) or 0)


def connections(server: NatsServer) -> int:
    """How many clients nats-server has now (0 while it is starting)."""
    try:
        with urllib.request.urlopen(f"{server.monitor_url}/connz") as answer:
            return int(json.load(answer)["num_connections"])
    except urllib.error.URLError:
        return 0


async def stop_nats(server: NatsServer) -> int:
    """Stops nats-server; how many clients it had."""
    had = await asyncio.to_thread(connections, server)
    server.process.stop(timeout=5)
    return had


async def restarted_across_an_outage(
    first: Scheduler, server: NatsServer, had: int, start_scheduler: StartScheduler
) -> Scheduler:
    """Stops `first`'s work while NATS is down; a new scheduler takes over once it is back.

    `first` is drained (its loops, republisher's included, stop: what it kept in
    memory is never retried) and closed at the test's end, once its `had`
    connections are back (nats-py cannot close one in the middle of a reconnect).
    """
    await first.service.drain(0)
    server.process.start()

    async def back() -> bool:
        return await asyncio.to_thread(connections, server) >= had

    await assert_eventually(back, within=30, message="the clients did not reconnect")
    return await start_scheduler(NATS_URL=server.url, FARM_NATS_REQUEST_TIMEOUT_SECONDS=1)


async def test_a_cancel_marked_while_nats_was_down_is_marked_after_a_restart(
    fresh_nats_server: NatsServer, start_scheduler: StartScheduler
) -> None:
    first = await start_scheduler(
        NATS_URL=fresh_nats_server.url, FARM_NATS_REQUEST_TIMEOUT_SECONDS=1
    )
    client = await nats.connect(
        fresh_nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    try:
        js = client.jetstream()
        bucket = await cancel_bucket(js)
        task = await first.create(region=NOWHERE)
        assert (await js.stream_info(TASK_STREAM)).state.messages == 1

        had = await stop_nats(fresh_nats_server)
        assert (await first.cancel(task.id)).status == CANCELLED
        assert await count(first.service.store, pending_marks) == 1
        second = await restarted_across_an_outage(first, fresh_nats_server, had, start_scheduler)

        await until_marked(bucket, task.id, "CANCELLED")

        async def settled() -> bool:
            store = second.service.store
            return await count(store, pending_marks) == 0 and await count(store, deletes) == 0

        await assert_eventually(settled, within=30, message="kept marks or deletes remain")
        assert (await js.stream_info(TASK_STREAM)).state.messages == 0
    finally:
        await client.close()


async def test_a_batch_cancelled_while_nats_was_down_is_marked_after_a_restart(
    fresh_nats_server: NatsServer, start_scheduler: StartScheduler
) -> None:
    first = await start_scheduler(
        NATS_URL=fresh_nats_server.url, FARM_NATS_REQUEST_TIMEOUT_SECONDS=1
    )
    client = await nats.connect(
        fresh_nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    try:
        js = client.jetstream()
        bucket = await cancel_bucket(js)
        ids = [(await first.create(region=NOWHERE)).id for _ in range(3)]
        assert (await js.stream_info(TASK_STREAM)).state.messages == 3

        had = await stop_nats(fresh_nats_server)
        answer = await first.tasks.CancelTasks(
            tasks_pb2.CancelTasksRequest(ids=ids), metadata=first.auth(), timeout=RPC_TIMEOUT
        )
        # The rows' cancels stand; each mark and delete is kept, as a CancelTask's is.
        assert [(task.id, task.status) for task in answer.tasks] == [(i, CANCELLED) for i in ids]
        assert await count(first.service.store, pending_marks) == 3
        second = await restarted_across_an_outage(first, fresh_nats_server, had, start_scheduler)

        for task_id in ids:
            await until_marked(bucket, task_id, "CANCELLED")

        async def settled() -> bool:
            store = second.service.store
            return await count(store, pending_marks) == 0 and await count(store, deletes) == 0

        await assert_eventually(settled, within=30, message="kept marks or deletes remain")
        assert (await js.stream_info(TASK_STREAM)).state.messages == 0
    finally:
        await client.close()


async def test_a_task_cancelled_before_its_publish_was_marked_is_marked_after_a_restart(
    fresh_nats_server: NatsServer, start_scheduler: StartScheduler
) -> None:
    # Its publish's ack not back yet: the task is not marked published, no delete is
    # tried, and the end mark is all that keeps an agent from running its message.
    first = await start_scheduler(
        NATS_URL=fresh_nats_server.url, FARM_NATS_REQUEST_TIMEOUT_SECONDS=1
    )
    client = await nats.connect(
        fresh_nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    try:
        js = client.jetstream()
        bucket = await cancel_bucket(js)
        task = await first.create(region=NOWHERE)
        store = first.service.store
        async with store.engine.begin() as connection:
            await connection.execute(
                update(TaskRow)
                .where(TaskRow.id == task.id)
                .values(published=False, queue_sequence=None)
            )

        had = await stop_nats(fresh_nats_server)
        assert (await first.cancel(task.id)).status == CANCELLED
        assert await count(store, deletes) == 0
        await restarted_across_an_outage(first, fresh_nats_server, had, start_scheduler)

        # What an agent reads before it runs the message: it acks it unrun.
        await until_marked(bucket, task.id, "CANCELLED")
        assert (await js.stream_info(TASK_STREAM)).state.messages == 1
    finally:
        await client.close()


async def test_a_running_report_of_an_ended_task_without_its_mark_marks_and_stops_it(
    scheduler: Scheduler, queue: Queue
) -> None:
    bucket = await cancel_bucket(queue.js)
    task = await scheduler.create(region=NOWHERE)
    assert (await scheduler.cancel(task.id)).status == CANCELLED
    # As if the scheduler had stopped between the cancel's commit and its mark.
    await bucket.delete(task.id)
    assert await end_mark(bucket, task.id) is None
    notices: asyncio.Queue[str] = asyncio.Queue()

    async def noticed(message: Msg) -> None:
        await notices.put(queue_pb2.CancelNotice.FromString(message.data).task_id)

    subscription = await queue.nc.subscribe(cancel_subject(task.id), cb=noticed)
    try:
        await queue.report(task.id, RUNNING, 1)

        await until_marked(bucket, task.id, "CANCELLED")
        assert await asyncio.wait_for(notices.get(), timeout=10) == task.id
        assert await scheduler.status(task.id) == CANCELLED
    finally:
        await subscription.unsubscribe()
