"""A watcher takes the records this replica's changes committed instead of reading the task."""

import asyncio
import contextlib
import dataclasses
import datetime as dt

from farm.tasks.v1 import tasks_pb2
from farm_scheduler.lifecycle import TaskState
from farm_scheduler.records import TaskRecord
from farm_scheduler.watch import TaskWatch

NOW = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
QUEUED = TaskRecord(
    "t1", "tenant", tasks_pb2.TaskSpec(), NOW, TaskState(tasks_pb2.TASK_STATUS_QUEUED)
)


def changed(record: TaskRecord, status: "tasks_pb2.TaskStatus.ValueType") -> TaskRecord:
    state = dataclasses.replace(record.state, status=status, attempts=1)
    return dataclasses.replace(record, state=state, revision=record.revision + 1)


class Reads:
    """The store's read of the task, counted; answers `current`."""

    def __init__(self, current: TaskRecord) -> None:
        self.current = current
        self.count = 0

    async def __call__(self) -> TaskRecord:
        self.count += 1
        return self.current


async def statuses(watch: TaskWatch, reads: Reads, out: list[int]) -> None:
    updates = watch.follow("t1", reads, asyncio.get_running_loop().time() + 5)
    async with contextlib.aclosing(updates):
        async for record in updates:
            out.append(record.state.status)


async def seen_count(seen: list[int], count: int) -> None:
    for _ in range(1000):
        if len(seen) >= count:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"the watcher saw {seen}, not {count} states")


async def test_committed_changes_reach_the_watcher_without_a_read() -> None:
    watch, reads = TaskWatch(poll_seconds=30), Reads(QUEUED)
    seen: list[int] = []
    following = asyncio.create_task(statuses(watch, reads, seen))
    await seen_count(seen, 1)
    running = changed(QUEUED, tasks_pb2.TASK_STATUS_RUNNING)
    await watch.announce("t1", running)
    await seen_count(seen, 2)
    await watch.announce("t1", changed(running, tasks_pb2.TASK_STATUS_SUCCEEDED))
    await asyncio.wait_for(following, 5)
    assert seen == [
        tasks_pb2.TASK_STATUS_QUEUED,
        tasks_pb2.TASK_STATUS_RUNNING,
        tasks_pb2.TASK_STATUS_SUCCEEDED,
    ]
    assert reads.count == 1  # the first look only


async def test_an_older_record_handed_late_does_not_take_the_task_back() -> None:
    watch, reads = TaskWatch(poll_seconds=30), Reads(QUEUED)
    seen: list[int] = []
    following = asyncio.create_task(statuses(watch, reads, seen))
    await seen_count(seen, 1)
    running = changed(QUEUED, tasks_pb2.TASK_STATUS_RUNNING)
    succeeded = changed(running, tasks_pb2.TASK_STATUS_SUCCEEDED)
    await watch.announce("t1", succeeded)
    await watch.announce("t1", running)
    await asyncio.wait_for(following, 5)
    assert seen == [tasks_pb2.TASK_STATUS_QUEUED, tasks_pb2.TASK_STATUS_SUCCEEDED]


async def test_a_change_announced_without_its_record_is_read() -> None:
    watch, reads = TaskWatch(poll_seconds=30), Reads(QUEUED)
    seen: list[int] = []
    following = asyncio.create_task(statuses(watch, reads, seen))
    await seen_count(seen, 1)
    reads.current = changed(QUEUED, tasks_pb2.TASK_STATUS_SUCCEEDED)
    await watch.announce("t1")
    await asyncio.wait_for(following, 5)
    assert seen == [tasks_pb2.TASK_STATUS_QUEUED, tasks_pb2.TASK_STATUS_SUCCEEDED]
    assert reads.count == 2


async def test_a_note_of_the_running_attempt_is_an_event_of_its_own() -> None:
    watch, reads = TaskWatch(poll_seconds=30), Reads(QUEUED)
    seen: list[int] = []
    notes: list[str] = []

    async def follow() -> None:
        updates = watch.follow("t1", reads, asyncio.get_running_loop().time() + 5)
        async with contextlib.aclosing(updates):
            async for record in updates:
                seen.append(record.state.status)
                notes.append(record.to_proto().status_message)

    following = asyncio.create_task(follow())
    await seen_count(seen, 1)
    running = changed(QUEUED, tasks_pb2.TASK_STATUS_RUNNING)
    await watch.announce("t1", running)
    await seen_count(seen, 2)
    note = "waiting for storage: storage unavailable; retrying"
    waiting = dataclasses.replace(
        running,
        state=dataclasses.replace(running.state, status_message=note),
        revision=running.revision + 1,
    )
    await watch.announce("t1", waiting)
    await seen_count(seen, 3)
    await watch.announce("t1", changed(waiting, tasks_pb2.TASK_STATUS_SUCCEEDED))
    await asyncio.wait_for(following, 5)
    running_status = tasks_pb2.TASK_STATUS_RUNNING
    assert seen[1:3] == [running_status, running_status]
    # Shown while RUNNING only: once the task ended, the note says nothing.
    assert notes == ["", "", note, ""]
