"""`farm task cancel`: one task by id, or many — by ids, from a file or stdin, by labels.

One id alone prints the Task CancelTask answers, as JSON (as it always has). Any other
selection cancels the tasks with CancelTasks, up to 1,000 ids a call, several calls
at a time, waiting out the key's rate limit; each task's outcome is a line (with
--json a JSON line as its call ends), then the counts. CancelTasks names the tasks
that had ended before the call, so an already CANCELLED task is reported as already
ended, not as cancelled now.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from farm.tasks.v1 import tasks_pb2
from farm_cli.client import FarmConnection, call_and_print, connect
from farm_cli.commands.bulk import as_they_end, progress_bar
from farm_cli.commands.ranges import MAX_CONCURRENCY, MAX_PAGE_SIZE, whole_number_in
from farm_cli.commands.task_ids import task_ids_from
from farm_cli.commands.task_list import every_task, list_request
from farm_cli.commands.task_spec import add_label_argument
from farm_cli.commands.task_text import label_filter
from farm_cli.console import UsageError
from farm_cli.exit_codes import ExitCode

if TYPE_CHECKING:
    import grpc

    from farm_cli.retries import RateGate

DEFAULT_CONCURRENCY = 4
MAX_CANCEL_IDS = 1000
"""The most ids one CancelTasks call takes (the scheduler's batch_cancels.MAX_CANCEL_IDS)."""
# Listed in this order, a task that starts running between the two listings is in
# the first; the other order would miss it.
UNENDED = (tasks_pb2.TASK_STATUS_QUEUED, tasks_pb2.TASK_STATUS_RUNNING)

CANCELLED, ALREADY_ENDED, NOT_FOUND, FAILED = "cancelled", "already_ended", "not_found", "failed"
OUTCOMES = (CANCELLED, ALREADY_ENDED, NOT_FOUND, FAILED)


@dataclass(frozen=True)
class Outcome:
    """What became of one selected task: its outcome, and its status or the error."""

    task_id: str
    outcome: str
    status: str = ""
    error_code: str = ""
    error_message: str = ""

    @property
    def ok(self) -> bool:
        """Whether the task is gone from the queue: cancelled now, or ended before."""
        return self.outcome in (CANCELLED, ALREADY_ENDED)

    def line(self) -> str:
        """`ID  cancelled`, `ID  already ended (SUCCEEDED)`, `ID  not found`, `ID  failed: ...`."""
        if self.outcome == CANCELLED:
            return f"{self.task_id}  cancelled"
        if self.outcome == ALREADY_ENDED:
            return f"{self.task_id}  already ended ({self.status.removeprefix('TASK_STATUS_')})"
        if self.outcome == NOT_FOUND:
            return f"{self.task_id}  not found"
        return f"{self.task_id}  failed: {self.error_code}: {self.error_message}"

    def to_json(self) -> str:
        """One JSON line: {"id", "outcome", "status"} or {"id", "outcome", "error"}."""
        fields: dict[str, object] = {"id": self.task_id, "outcome": self.outcome}
        if self.status:
            fields["status"] = self.status
        else:
            fields["error"] = {"code": self.error_code, "message": self.error_message}
        return json.dumps(fields, ensure_ascii=False)


def add_cancel_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `task cancel`."""
    cancel = verbs.add_parser(
        "cancel",
        help="cancel tasks: by ids, --from a file of them, or every queued or running one "
        "with --label; one id alone prints the task; exit 3 if any was not found or failed",
    )
    cancel.add_argument("ids", nargs="*", metavar="ID", help="the id of a task to cancel")
    cancel.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help='task ids in FILE ("-": stdin): one a line, or the JSON that task submit, '
        "create, get, list or cancel --json print",
    )
    add_label_argument(
        cancel,
        "every queued or running task of yours with this label (repeatable: with all of them)",
        label_filter,
    )
    cancel.add_argument(
        "--concurrency",
        # Checked as the options are read: refused with one ID too, not left unread.
        type=whole_number_in(1, MAX_CONCURRENCY),
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"at most N CancelTasks calls (of up to {MAX_CANCEL_IDS} ids) at once "
        f"(1 to {MAX_CONCURRENCY}; default {DEFAULT_CONCURRENCY})",
    )
    cancel.add_argument(
        "--json", action="store_true", help="one JSON line per task as its call ends, nothing else"
    )
    cancel.set_defaults(run=cancel_tasks)


def cancel_tasks(args: argparse.Namespace) -> int:
    """CancelTask of one id, or CancelTasks of every task selected; exit 3 if any failed."""
    if len(args.ids) == 1 and not args.from_file and not args.labels:
        request = tasks_pb2.CancelTaskRequest(id=args.ids[0])
        return call_and_print(lambda farm: farm.tasks.CancelTask, request)
    if not (args.ids or args.from_file or args.labels):
        raise UsageError("name the tasks to cancel: IDs, --from FILE or --label KEY=VALUE")
    from farm_cli.retries import RateGate

    given = list(args.ids)
    if args.from_file:
        given += task_ids_from(args.from_file)
    started = time.monotonic()
    # The gate stops on the way out, so Ctrl-C ends the threads' waits too.
    with RateGate() as gate, connect() as farm:
        listed = _listed(farm, args.labels, gate) if args.labels else []
        selected = selection(given, listed)
        outcomes = _cancel_with_progress(farm, selected, gate, args)
    if not args.json:
        order = {task_id: index for index, task_id in enumerate(selected)}
        for outcome in sorted(outcomes, key=lambda o: order[o.task_id]):
            print(outcome.line())
        print(summary(outcomes, time.monotonic() - started), flush=True)
    return ExitCode.OK if all(o.ok for o in outcomes) else ExitCode.TASKS_FAILED


def selection(given: Sequence[str], listed: Sequence[str]) -> list[str]:
    """The ids of the tasks to cancel, each once, in the order named: given, then listed."""
    return list(dict.fromkeys([*given, *listed]))


def batches(task_ids: Sequence[str], size: int = MAX_CANCEL_IDS) -> list[list[str]]:
    """`task_ids` in CancelTasks calls of at most `size` ids, in order."""
    return [list(task_ids[start : start + size]) for start in range(0, len(task_ids), size)]


def _listed(farm: FarmConnection, labels: Sequence[tuple[str, str]], gate: RateGate) -> list[str]:
    """The ids of the caller's queued and running tasks with every one of `labels`."""
    return [
        task.id
        for status in UNENDED
        for task in every_task(farm, list_request(status, labels, page_size=MAX_PAGE_SIZE), gate)
    ]


def _cancel_with_progress(
    farm: FarmConnection, selected: list[str], gate: RateGate, args: argparse.Namespace
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with progress_bar("cancelling", "failed", quiet=args.json) as progress:
        bar = progress.add_task("cancel", total=len(selected), failed=0)
        # A refused key stops them all (raised).
        for answered in as_they_end(
            lambda ids: cancel_batch(farm, ids, gate),
            batches(selected),
            args.concurrency,
            "farm-cancel",
        ):
            outcomes += answered
            if args.json:
                for outcome in answered:
                    print(outcome.to_json(), flush=True)
            progress.update(bar, advance=len(answered), failed=sum(not o.ok for o in outcomes))
    return outcomes


def cancel_batch(farm: FarmConnection, task_ids: list[str], gate: RateGate) -> list[Outcome]:
    """Cancels up to 1,000 tasks with one CancelTasks call; each one's outcome, in order.

    A call the farm refuses as a whole (UNAVAILABLE after its retries) fails each of
    its ids; a refused key's error is raised.
    """
    import grpc

    from farm_cli.retries import call_retrying

    request = tasks_pb2.CancelTasksRequest(ids=task_ids)
    try:
        answer = call_retrying(lambda: farm.call(farm.tasks.CancelTasks, request), gate)
    except grpc.RpcError as error:
        return [_refused(task_id, error) for task_id in task_ids]
    return outcomes_of(task_ids, answer)


def outcomes_of(task_ids: Sequence[str], answer: tasks_pb2.CancelTasksResponse) -> list[Outcome]:
    """The outcome of each of `task_ids` from CancelTasks' answer to them."""
    errors = {error.index: error for error in answer.errors}
    ended = set(answer.already_ended)
    tasks = iter(answer.tasks)
    outcomes = []
    for index, task_id in enumerate(task_ids):
        error = errors.get(index)
        if error is not None:
            outcome = NOT_FOUND if error.code == "NOT_FOUND" else FAILED
            outcomes.append(
                Outcome(task_id, outcome, error_code=error.code, error_message=error.message)
            )
            continue
        task = next(tasks)
        status = _name(task.status)
        if task.id in ended:
            outcomes.append(Outcome(task_id, ALREADY_ENDED, status=status))
        elif task.status == tasks_pb2.TASK_STATUS_CANCELLED:
            outcomes.append(Outcome(task_id, CANCELLED, status=status))
        else:
            message = f"CancelTasks answered the task {status}"
            outcomes.append(Outcome(task_id, FAILED, error_code="UNKNOWN", error_message=message))
    return outcomes


def _refused(task_id: str, error: grpc.RpcError) -> Outcome:
    import grpc

    from farm_cli.rpc_errors import item_failure

    code, details = item_failure(error)
    outcome = NOT_FOUND if code == grpc.StatusCode.NOT_FOUND else FAILED
    return Outcome(task_id, outcome, error_code=code.name, error_message=details)


def summary(outcomes: Sequence[Outcome], elapsed_seconds: float) -> str:
    """`58 cancelled, 1 already ended, 1 not found, 0 failed, of 60 in 2.1 s`."""
    counts = {name: sum(o.outcome == name for o in outcomes) for name in OUTCOMES}
    words = ", ".join(f"{counts[name]} {name.replace('_', ' ')}" for name in OUTCOMES)
    return f"{words}, of {len(outcomes)} in {elapsed_seconds:.1f} s"


def _name(status: tasks_pb2.TaskStatus.ValueType) -> str:
    return tasks_pb2.TaskStatus.Name(status)
