"""A change of a task's state as rows see it: the record after it, and the swap that writes it."""

import dataclasses
from dataclasses import dataclass
from typing import Any

from farm.tasks.v1 import tasks_pb2
from farm_scheduler.callbacks.rows import callback_reset
from farm_scheduler.lifecycle import TaskState
from farm_scheduler.records import TaskRecord, state_values
from farm_scheduler.result_cache import result_serves_cache


@dataclass(frozen=True)
class TaskChange:
    """A task before and after a change of its state."""

    before: TaskRecord
    after: TaskRecord


def swap_values(before: TaskRecord, after: TaskRecord) -> dict[str, Any]:
    """The parameters of task_rows.SWAP_TASK that write `after` over `before` (its revision)."""
    return {
        **state_values(after.state),
        "published": after.published,
        "dead_letter_pending": after.dead_letter_pending,
        "revision": after.revision,
        # Only a change: an artifact's deletion clears it without a revision.
        **({"cache_key": ""} if after.cache_key != before.cache_key else {}),
        **callback_reset(after.state.requeues != before.state.requeues, before.spec.callback_url),
        "where_id": before.id,
        "where_revision": before.revision,
    }


def changed(before: TaskRecord, state: TaskState) -> TaskRecord:
    """`before` in `state`, with what the change means for publishing."""
    published, dead_letter_pending = before.published, before.dead_letter_pending
    callback_pending = before.callback_pending
    if state.requeues != before.state.requeues:
        # A new queuing: its WorkItem is to be published under a new id (and, as
        # callback_reset writes, its callback is delivered again).
        published, dead_letter_pending = False, False
        callback_pending = bool(before.spec.callback_url)
    failed = tasks_pb2.TASK_STATUS_FAILED
    if state.status == failed and before.state.status != failed:
        # A new dead letter: to be copied to FARM_DEAD.
        dead_letter_pending = True
    key = before.cache_key
    succeeded = tasks_pb2.TASK_STATUS_SUCCEEDED
    if key and state.status == succeeded and before.state.status != succeeded:
        # An error page the task succeeded with (a 503) does not answer later tasks.
        key = key if result_serves_cache(state.result) else ""
    return dataclasses.replace(
        before,
        state=state,
        published=published,
        dead_letter_pending=dead_letter_pending,
        callback_pending=callback_pending,
        revision=before.revision + 1,
        cache_key=key,
    )
