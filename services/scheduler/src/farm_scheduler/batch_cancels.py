"""CancelTasks: up to 1,000 of a tenant's tasks cancelled in one call, with an outcome per id.

Each id is cancelled as CancelTask cancels one (store.cancel: a compare-and-set on
the task's row, scoped to the caller's tenant), so an id of another tenant's task
is NOT_FOUND, as it is alone. An id named twice is cancelled once and answered at
each of its places. The batch fails as a whole only when it is empty or too long.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import FarmError, InvalidArgument, NotFound, Unavailable
from farm_scheduler.lifecycle import is_final
from farm_scheduler.records import TaskRecord
from farm_scheduler.store import TaskChange

MAX_CANCEL_IDS = 1000
"""The most task ids one CancelTasks call may carry."""
DEFAULT_CANCEL_CONCURRENCY = 16
"""How many of a batch's ids are cancelled at once."""


@dataclass(frozen=True)
class Cancelled:
    """An id whose task exists: as it stands now, and whether it had ended before the call."""

    record: TaskRecord
    ended_before: bool


CancelOutcome = Cancelled | FarmError
"""What became of one id: its task, or why it has none."""


def check_cancel_batch(count: int) -> None:
    """Raises InvalidArgument naming `ids` unless a batch of `count` ids is allowed."""
    if count == 0:
        raise InvalidArgument("ids", f"is required: 1 to {MAX_CANCEL_IDS} task ids")
    if count > MAX_CANCEL_IDS:
        raise InvalidArgument(
            "ids",
            f"holds {count} task ids, at most {MAX_CANCEL_IDS} are allowed in one call; "
            "split the batch",
        )


async def cancel_each(
    task_ids: Sequence[str],
    check_id: Callable[[str], str],
    cancel: Callable[[str], Awaitable[TaskChange | None]],
    get: Callable[[str], Awaitable[TaskRecord]],
    concurrency: int = DEFAULT_CANCEL_CONCURRENCY,
) -> list[CancelOutcome]:
    """The outcome of each of `task_ids`, in order; each distinct id cancelled once.

    `check_id` refuses an id not in the form of ours, `cancel` is the tenant's
    CancelTask without its answer (None: the task had ended), `get` the tenant's task;
    at most `concurrency` ids are under way at once.
    """
    distinct = list(dict.fromkeys(task_ids))
    # A cancel waits mostly on NATS (the end mark, the queue message): several overlap.
    slots = asyncio.Semaphore(concurrency)

    async def one(task_id: str) -> CancelOutcome:
        async with slots:
            return await _cancel_one(task_id, check_id, cancel, get)

    done = dict(zip(distinct, await asyncio.gather(*map(one, distinct)), strict=True))
    return [done[task_id] for task_id in task_ids]


async def _cancel_one(
    task_id: str,
    check_id: Callable[[str], str],
    cancel: Callable[[str], Awaitable[TaskChange | None]],
    get: Callable[[str], Awaitable[TaskRecord]],
) -> CancelOutcome:
    try:
        checked = check_id(task_id)
        change = await cancel(checked)
        if change is not None:
            return Cancelled(change.after, ended_before=False)
        record = await get(checked)
    except (InvalidArgument, NotFound, Unavailable) as refused:
        return refused
    return Cancelled(record, ended_before=is_final(record.state.status))


def cancel_response(outcomes: Sequence[CancelOutcome]) -> tasks_pb2.CancelTasksResponse:
    """CancelTasks' answer: the tasks in the order of their ids, and an error per refused id."""
    response = tasks_pb2.CancelTasksResponse()
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, Cancelled):
            response.tasks.append(outcome.record.to_proto())
            if outcome.ended_before:
                response.already_ended.append(outcome.record.id)
        else:
            response.errors.append(cancel_error(index, outcome))
    return response


def cancel_error(index: int, error: FarmError) -> tasks_pb2.CancelTasksError:
    """The response's error for id `index`, refused with `error`, named as sent: `ids[3]`."""
    field = f"ids[{index}]"
    # InvalidArgument names `id` (CancelTask's field); NotFound names the task.
    problem = error.problem if isinstance(error, InvalidArgument) else error.message
    return tasks_pb2.CancelTasksError(
        index=index, field=field, code=error.code.name, message=f"{field}: {problem}"
    )
