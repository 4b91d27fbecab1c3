"""`farm task create|submit|run|get|list|cancel|watch|trace`: the TaskService, and traces."""

import argparse
from datetime import UTC, datetime

from farm.tasks.v1 import tasks_pb2
from farm_cli.client import call_and_print, call_farm
from farm_cli.commands.run_wait import (
    CLIENT_DEADLINE,
    RunTaskNotAnswered,
    answer_margin_seconds,
    run_wait_seconds,
)
from farm_cli.commands.task_batch import add_batch_arguments, batch_urls, run_batch
from farm_cli.commands.task_cancel import add_cancel_parser
from farm_cli.commands.task_list import add_list_parser
from farm_cli.commands.task_spec import add_task_spec_arguments, task_spec_from_args
from farm_cli.commands.task_submit import add_submit_parser
from farm_cli.commands.task_trace import add_trace_parser
from farm_cli.commands.task_watch import ENDED, add_watch_parser, status_name
from farm_cli.console import CliError, UsageError, print_message, waiting
from farm_cli.exit_codes import ExitCode


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `task` and its verbs."""
    group = commands.add_parser("task", help="create, run, inspect and cancel tasks")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")

    create = verbs.add_parser("create", help="queue a task and print it (status QUEUED)")
    add_task_spec_arguments(create)
    create.set_defaults(run=create_task)

    add_submit_parser(verbs)

    run = verbs.add_parser(
        "run",
        help="queue a task and wait until it has ended, or with --from one per URL of a "
        "file (exit 3 unless every task succeeded)",
    )
    add_task_spec_arguments(run)
    add_batch_arguments(run)
    run.set_defaults(run=run_task)

    get = verbs.add_parser("get", help="print one task")
    get.add_argument("id")
    get.set_defaults(run=get_task)

    add_list_parser(verbs)

    add_cancel_parser(verbs)

    add_watch_parser(verbs)

    add_trace_parser(verbs)


def create_task(args: argparse.Namespace) -> int:
    """CreateTask."""
    request = tasks_pb2.CreateTaskRequest(spec=task_spec_from_args(args))
    return call_and_print(lambda farm: farm.tasks.CreateTask, request)


def run_task(args: argparse.Namespace) -> int:
    """RunTask, or with --from a batch of them; exits 3 if a task did not succeed."""
    if args.from_file:
        if args.idempotency_key:
            # One key for every URL would make each task after the first the first one.
            raise UsageError("--idempotency-key does not go with --from: each task needs its own")
        urls = batch_urls(args)
        # The options' spec, with the first URL standing in for each URL in turn.
        args.url = urls[0]
        return run_batch(args, task_spec_from_args(args), urls)
    request = tasks_pb2.RunTaskRequest(spec=task_spec_from_args(args))
    margin_seconds = answer_margin_seconds()
    wait_seconds = run_wait_seconds(request.spec, datetime.now(UTC), margin_seconds)
    with waiting(f"running {request.spec.url} (Ctrl-C stops waiting)", quiet=args.json):
        task = run_within(request, wait_seconds, margin_seconds)
    print_message(task)
    if task.status not in ENDED:
        raise TaskNotEnded(task)
    succeeded = task.status == tasks_pb2.TASK_STATUS_SUCCEEDED
    return ExitCode.OK if succeeded else ExitCode.TASKS_FAILED


def run_within(
    request: tasks_pb2.RunTaskRequest, wait_seconds: float, margin_seconds: float
) -> tasks_pb2.Task:
    """RunTask with `wait_seconds` as its deadline; RunTaskNotAnswered once that passes.

    `margin_seconds` is the part of the wait past the task's own time.
    """
    import grpc

    from farm_cli.rpc_errors import rpc_status

    try:
        task: tasks_pb2.Task = call_farm(
            lambda farm: farm.tasks.RunTask, request, timeout=wait_seconds
        )
    except grpc.RpcError as error:
        if rpc_status(error) == (grpc.StatusCode.DEADLINE_EXCEEDED, CLIENT_DEADLINE):
            raise RunTaskNotAnswered(wait_seconds, margin_seconds) from None
        raise
    return task


class TaskNotEnded(CliError):
    """RunTask stopped waiting (at its attempts' time limits plus the queue's wait) first.

    Exit 1, as a call that timed out: the task may still succeed, so it is no exit 3.
    """

    def __init__(self, task: tasks_pb2.Task) -> None:
        super().__init__(
            f"task {task.id} is still {status_name(task.status)}: RunTask stopped waiting "
            f"before it ended; follow it with `farm task watch {task.id}`"
        )

    @property
    def code_name(self) -> str:
        """As the call's own timeout would name it."""
        return "DEADLINE_EXCEEDED"


def get_task(args: argparse.Namespace) -> int:
    """GetTask."""
    request = tasks_pb2.GetTaskRequest(id=args.id)
    return call_and_print(lambda farm: farm.tasks.GetTask, request)
