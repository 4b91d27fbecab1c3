"""Cancelling many tasks: CancelTasks calls of at most 1,000 ids, one CancelItem per id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from browserfarm.batches import ItemError
from browserfarm.results import Task
from farm.tasks.v1 import tasks_pb2

MAX_CANCEL_IDS = 1000
"""The most ids one CancelTasks call takes; cancel_tasks sends more in several calls."""


@dataclass(frozen=True)
class CancelItem:
    """What became of the id at `index` of a cancel batch.

    `task` is the task as it stands after the call (CANCELLED, or the final state it
    had reached before: then `already_ended`); `error` says why there is none, e.g.
    NOT_FOUND for an id of no task of the caller's tenant (field "ids[3]").
    """

    index: int
    task_id: str
    task: Task | None
    already_ended: bool = False
    error: ItemError | None = None

    @property
    def ok(self) -> bool:
        """Whether the task is ended now: cancelled by this call or before it."""
        return self.task is not None


def task_ids(tasks: Iterable[Task | str]) -> list[str]:
    """The ids of `tasks`, each a Task or its id."""
    return [task if isinstance(task, str) else task.id for task in tasks]


def cancel_requests(ids: Sequence[str]) -> list[tasks_pb2.CancelTasksRequest]:
    """CancelTasks requests of at most MAX_CANCEL_IDS ids each, in order."""
    return [
        tasks_pb2.CancelTasksRequest(ids=ids[start : start + MAX_CANCEL_IDS])
        for start in range(0, len(ids), MAX_CANCEL_IDS)
    ]


def cancel_items(
    request: tasks_pb2.CancelTasksRequest, reply: tasks_pb2.CancelTasksResponse, start: int
) -> list[CancelItem]:
    """One CancelItem per id of `request`, the call whose first id is the caller's `start`-th.

    An error's field and message keep the farm's index within its call ("ids[3]"),
    the item's `index` is the caller's.
    """
    errors = {error.index: error for error in reply.errors}
    ended = set(reply.already_ended)
    tasks = iter(reply.tasks)
    items = []
    for position, task_id in enumerate(request.ids):
        error = errors.get(position)
        if error is not None:
            found = ItemError(error.field, error.code, error.message)
            items.append(CancelItem(start + position, task_id, None, error=found))
            continue
        task = next(tasks)
        items.append(CancelItem(start + position, task_id, Task.from_proto(task), task.id in ended))
    return items
