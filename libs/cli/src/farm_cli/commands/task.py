"""`farm task create|run|get|list|cancel|watch`: the TaskService."""

import argparse

from farm.tasks.v1 import tasks_pb2
from farm_cli.client import CALL_TIMEOUT, connect
from farm_cli.commands.ranges import INT32_MAX, whole_number
from farm_cli.commands.task_spec import add_task_spec_arguments, label, task_spec_from_args
from farm_cli.console import print_message
from farm_cli.pages import every_page

# RunTask waits up to the task's 300 s limit; Envoy's route allows 330 s.
RUN_TIMEOUT = 330.0
STATUSES = {
    "queued": tasks_pb2.TASK_STATUS_QUEUED,
    "running": tasks_pb2.TASK_STATUS_RUNNING,
    "succeeded": tasks_pb2.TASK_STATUS_SUCCEEDED,
    "failed": tasks_pb2.TASK_STATUS_FAILED,
    "cancelled": tasks_pb2.TASK_STATUS_CANCELLED,
}


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `task` and its verbs."""
    group = commands.add_parser("task", help="create, run, inspect and cancel tasks")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")

    create = verbs.add_parser("create", help="queue a task and print it (status QUEUED)")
    add_task_spec_arguments(create)
    create.set_defaults(run=create_task)

    run = verbs.add_parser(
        "run", help="queue a task and wait until it has ended (exit 1 unless it succeeded)"
    )
    add_task_spec_arguments(run)
    run.set_defaults(run=run_task)

    get = verbs.add_parser("get", help="print one task")
    get.add_argument("id")
    get.set_defaults(run=get_task)

    listing = verbs.add_parser("list", help="list tasks, newest first")
    listing.add_argument("--status", choices=list(STATUSES))
    listing.add_argument(
        "--label", dest="labels", type=label, action="append", default=[], metavar="KEY=VALUE"
    )
    listing.add_argument("--page-size", type=whole_number(INT32_MAX), default=0)
    listing.add_argument("--page-token", default="")
    listing.add_argument("--all", action="store_true", help="follow every page")
    listing.set_defaults(run=list_tasks)

    cancel = verbs.add_parser("cancel", help="cancel a task")
    cancel.add_argument("id")
    cancel.set_defaults(run=cancel_task)

    watch = verbs.add_parser("watch", help="print the task's events (one JSON a line)")
    watch.add_argument("id")
    watch.set_defaults(run=watch_task)


def create_task(args: argparse.Namespace) -> int:
    """CreateTask."""
    request = tasks_pb2.CreateTaskRequest(spec=task_spec_from_args(args))
    with connect() as farm:
        print_message(farm.tasks.CreateTask(request, metadata=farm.metadata, timeout=CALL_TIMEOUT))
    return 0


def run_task(args: argparse.Namespace) -> int:
    """RunTask; exits 1 if the task did not succeed."""
    request = tasks_pb2.RunTaskRequest(spec=task_spec_from_args(args))
    with connect() as farm:
        task = farm.tasks.RunTask(request, metadata=farm.metadata, timeout=RUN_TIMEOUT)
    print_message(task)
    return 0 if task.status == tasks_pb2.TASK_STATUS_SUCCEEDED else 1


def get_task(args: argparse.Namespace) -> int:
    """GetTask."""
    with connect() as farm:
        request = tasks_pb2.GetTaskRequest(id=args.id)
        print_message(farm.tasks.GetTask(request, metadata=farm.metadata, timeout=CALL_TIMEOUT))
    return 0


def list_tasks(args: argparse.Namespace) -> int:
    """ListTasks: one page, or with --all every page in one list."""
    request = tasks_pb2.ListTasksRequest(
        status=STATUSES[args.status] if args.status else tasks_pb2.TASK_STATUS_UNSPECIFIED,
        page_size=args.page_size,
        page_token=args.page_token,
        label=[f"{key}={value}" for key, value in args.labels],
    )
    with connect() as farm:

        def call(request: tasks_pb2.ListTasksRequest) -> tasks_pb2.ListTasksResponse:
            page: tasks_pb2.ListTasksResponse = farm.tasks.ListTasks(
                request, metadata=farm.metadata, timeout=CALL_TIMEOUT
            )
            return page

        page = every_page(call, request, "tasks") if args.all else call(request)
    print_message(page)
    return 0


def cancel_task(args: argparse.Namespace) -> int:
    """CancelTask."""
    with connect() as farm:
        request = tasks_pb2.CancelTaskRequest(id=args.id)
        print_message(farm.tasks.CancelTask(request, metadata=farm.metadata, timeout=CALL_TIMEOUT))
    return 0


def watch_task(args: argparse.Namespace) -> int:
    """WatchTask: each event on its own line as it comes, until the task ends."""
    with connect() as farm:
        request = tasks_pb2.WatchTaskRequest(id=args.id)
        for event in farm.tasks.WatchTask(request, metadata=farm.metadata):
            print_message(event, one_line=True)
    return 0
