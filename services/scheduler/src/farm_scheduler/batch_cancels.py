"""CancelTasks: up to 1,000 of a tenant's tasks cancelled in one call, with an outcome per id.

Each id comes to what CancelTask would make of it (a compare-and-set on the task's
row, scoped to the caller's tenant), so an id of another tenant's task is NOT_FOUND,
as it is alone; but the rows are written a chunk a transaction (cancel_rows) and the
end marks and queue deletes go to NATS together (EndMarks.mark_many,
QueueMessages.ended_many). An id named twice is cancelled once and answered at each
of its places. The batch fails as a whole only when it is empty or too long.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import FarmError, InvalidArgument, NotFound
from farm_scheduler.cancel_rows import CancelledRows
from farm_scheduler.lifecycle import is_final
from farm_scheduler.records import TaskRecord

MAX_CANCEL_IDS = 1000
"""The most task ids one CancelTasks call may carry."""


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


async def cancel_all(
    task_ids: Sequence[str],
    check_id: Callable[[str], str],
    cancel_many: Callable[[Sequence[str]], Awaitable[CancelledRows]],
) -> list[CancelOutcome]:
    """The outcome of each of `task_ids`, in order; each distinct id cancelled once.

    `check_id` refuses an id not in the form of ours; `cancel_many` is the tenant's
    CancelTask of many distinct ids at once, without its answers (TaskStore.cancel_many
    and what follows a cancel).
    """
    checked: dict[str, str | FarmError] = {}
    for task_id in dict.fromkeys(task_ids):
        try:
            checked[task_id] = check_id(task_id)
        except (InvalidArgument, NotFound) as refused:
            checked[task_id] = refused
    done = await cancel_many(
        list(dict.fromkeys(value for value in checked.values() if isinstance(value, str)))
    )
    return [_outcome(checked[task_id], done) for task_id in task_ids]


def _outcome(checked: str | FarmError, done: CancelledRows) -> CancelOutcome:
    """What became of an id, `checked` (or refused), after the batch's cancel `done`."""
    if not isinstance(checked, str):
        return checked
    if checked in done.changes:
        return Cancelled(done.changes[checked].after, ended_before=False)
    if checked in done.ended:
        record = done.ended[checked]
        return Cancelled(record, ended_before=is_final(record.state.status))
    return done.refused.get(checked) or NotFound("task", checked)


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
