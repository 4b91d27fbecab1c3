"""`farm task cancel`: one task by id, or many — by ids, from a file or stdin, by labels.

One id alone prints the Task CancelTask answers, as JSON (as it always has). Any other
selection cancels each task with CancelTask, several at a time, waiting out the
key's rate limit; each task's outcome is a line (with --json a JSON line as it ends),
then the counts. CancelTask answers a task that had already ended with that task as
it is, so an already CANCELLED task looks like one cancelled now: a task picked by
id is first read (GetTask), and one that has ended is reported, not cancelled,
unless a listing of queued and running tasks names it (a page of 1,000 read for
every 100 ids given saves most of those reads when the ids are of unended tasks).
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
from farm_cli.commands.task_watch import FINAL
from farm_cli.console import UsageError
from farm_cli.exit_codes import ExitCode

if TYPE_CHECKING:
    import grpc

    from farm_cli.retries import RateGate

DEFAULT_CONCURRENCY = 16
IDS_PER_LISTED_PAGE = 100
"""A page of queued or running tasks is read for every this many ids given, to skip
their GetTask: at worst one call more per 100 ids, at best 1,000 fewer."""
# Listed in this order, a task that starts running between the two listings is in
# the first; the other order would miss it.
UNENDED = (tasks_pb2.TASK_STATUS_QUEUED, tasks_pb2.TASK_STATUS_RUNNING)

CANCELLED, ALREADY_ENDED, NOT_FOUND, FAILED = "cancelled", "already_ended", "not_found", "failed"
OUTCOMES = (CANCELLED, ALREADY_ENDED, NOT_FOUND, FAILED)


@dataclass(frozen=True)
class Selected:
    """A task to cancel; `unended` when a listing of queued and running tasks named it."""

    id: str
    unended: bool = False


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
        help=f"at most N calls at once (1 to {MAX_CONCURRENCY}; default {DEFAULT_CONCURRENCY})",
    )
    cancel.add_argument(
        "--json", action="store_true", help="one JSON line per task as it ends, nothing else"
    )
    cancel.set_defaults(run=cancel_tasks)


def cancel_tasks(args: argparse.Namespace) -> int:
    """CancelTask for the one id given, or for every task selected; exit 3 if any failed."""
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
        listed += _unended_among(farm, set(given) - set(listed), gate)
        selected = selection(given, listed)
        outcomes = _cancel_with_progress(farm, selected, gate, args)
    if not args.json:
        order = {task.id: index for index, task in enumerate(selected)}
        for outcome in sorted(outcomes, key=lambda o: order[o.task_id]):
            print(outcome.line())
        print(summary(outcomes, time.monotonic() - started), flush=True)
    return ExitCode.OK if all(o.ok for o in outcomes) else ExitCode.TASKS_FAILED


def selection(given: Sequence[str], listed: Sequence[str]) -> list[Selected]:
    """The tasks to cancel, each once, in the order named: ids given, then ids listed."""
    chosen: dict[str, Selected] = {}
    for task_id in given:
        chosen.setdefault(task_id, Selected(task_id))
    for task_id in listed:
        chosen[task_id] = Selected(task_id, unended=True)
    return list(chosen.values())


def _listed(farm: FarmConnection, labels: Sequence[tuple[str, str]], gate: RateGate) -> list[str]:
    """The ids of the caller's queued and running tasks with every one of `labels`."""
    return [
        task.id
        for status in UNENDED
        for task in every_task(farm, list_request(status, labels, page_size=MAX_PAGE_SIZE), gate)
    ]


def _unended_among(farm: FarmConnection, given: set[str], gate: RateGate) -> list[str]:
    """Those of the `given` ids a bounded listing of the queued and running tasks names.

    At most one page per IDS_PER_LISTED_PAGE ids given (none for fewer), newest
    first: the ids it does not reach are read one by one (GetTask), as before.
    """
    pages_left = len(given) // IDS_PER_LISTED_PAGE
    found: set[str] = set()
    for status in UNENDED:
        token = ""
        while pages_left > 0 and found != given:
            page = _page(
                farm, list_request(status, (), page_size=MAX_PAGE_SIZE, page_token=token), gate
            )
            found |= given.intersection(task.id for task in page.tasks)
            pages_left -= 1
            token = page.next_page_token
            if not token:
                break
    return sorted(found)


def _page(
    farm: FarmConnection, request: tasks_pb2.ListTasksRequest, gate: RateGate
) -> tasks_pb2.ListTasksResponse:
    from farm_cli.retries import call_retrying

    page: tasks_pb2.ListTasksResponse = call_retrying(
        lambda: farm.call(farm.tasks.ListTasks, request), gate
    )
    return page


def _cancel_with_progress(
    farm: FarmConnection, selected: list[Selected], gate: RateGate, args: argparse.Namespace
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with progress_bar("cancelling", "failed", quiet=args.json) as progress:
        bar = progress.add_task("cancel", total=len(selected), failed=0)
        # A refused key stops them all (raised).
        for outcome in as_they_end(
            lambda task: cancel_one(farm, task, gate), selected, args.concurrency, "farm-cancel"
        ):
            outcomes.append(outcome)
            if args.json:
                print(outcome.to_json(), flush=True)
            progress.update(bar, advance=1, failed=sum(not o.ok for o in outcomes))
    return outcomes


def cancel_one(farm: FarmConnection, task: Selected, gate: RateGate) -> Outcome:
    """Cancels `task` unless it has ended; its outcome. Raises a refused key's error."""
    import grpc

    from farm_cli.retries import call_retrying

    try:
        if not task.unended:
            found = call_retrying(
                lambda: farm.call(farm.tasks.GetTask, tasks_pb2.GetTaskRequest(id=task.id)), gate
            )
            if found.status in FINAL:
                return Outcome(task.id, ALREADY_ENDED, status=_name(found.status))
        answer = call_retrying(
            lambda: farm.call(farm.tasks.CancelTask, tasks_pb2.CancelTaskRequest(id=task.id)),
            gate,
        )
    except grpc.RpcError as error:
        return _refused(task.id, error)
    if answer.status == tasks_pb2.TASK_STATUS_CANCELLED:
        return Outcome(task.id, CANCELLED, status=_name(answer.status))
    if answer.status in FINAL:
        # It ended on its own between the listing (or GetTask) and CancelTask.
        return Outcome(task.id, ALREADY_ENDED, status=_name(answer.status))
    message = f"CancelTask answered the task {_name(answer.status)}"
    return Outcome(task.id, FAILED, error_code="UNKNOWN", error_message=message)


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
