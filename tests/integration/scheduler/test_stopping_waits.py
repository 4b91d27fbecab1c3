"""A scheduler replica that stops ends RunTask's and WatchTask's waits at once, saying so.

Before, they ran until the gRPC server's grace was over and were cut off with gRPC's
bare "Cancelling all calls" (seen in a rolling restart under a stream of RunTasks):
the caller did not learn the task's id, nor that the task went on.
"""

import asyncio

import grpc

from tests.integration.scheduler.agent_side import RPC_TIMEOUT, Queue
from tests.integration.scheduler.conftest import QUEUED, Scheduler, rpc_error

# Longer than the test waits for the calls to end: only the stop's first act may end them.
GRACE_SECONDS = 3 * RPC_TIMEOUT


async def test_run_task_ends_unavailable_naming_the_task_when_its_replica_stops(
    scheduler: Scheduler, queue: Queue
) -> None:
    run = asyncio.ensure_future(scheduler.run())
    item = await queue.take()

    draining = asyncio.ensure_future(scheduler.service.drain(GRACE_SECONDS))
    error = await rpc_error(run)
    await draining

    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
    details = error.details() or ""
    assert f"stopping; task {item.task_id} goes on" in details
    assert "same idempotencyKey" in details
    assert await scheduler.status(item.task_id) == QUEUED


async def test_watch_task_ends_unavailable_when_its_replica_stops(scheduler: Scheduler) -> None:
    task = await scheduler.create()
    events = scheduler.watch(task.id)
    assert (await anext(events)).status == QUEUED

    draining = asyncio.ensure_future(scheduler.service.drain(GRACE_SECONDS))
    error = await rpc_error(anext(events))
    await draining

    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
    assert f"task {task.id} goes on" in (error.details() or "")


async def test_run_task_called_while_its_replica_stops_names_the_task_it_made(
    scheduler: Scheduler,
) -> None:
    await scheduler.service.drain(0)

    error = await rpc_error(scheduler.run())

    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
    listed = await scheduler.list_tasks()
    assert len(listed.tasks) == 1
    assert f"task {listed.tasks[0].id} goes on" in (error.details() or "")
