"""`farm task list`, and the label filters and paging it shares with `task cancel --label`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from farm.tasks.v1 import tasks_pb2
from farm_cli.client import FarmConnection, list_and_print
from farm_cli.commands.ranges import add_page_arguments
from farm_cli.commands.task_spec import add_label_argument
from farm_cli.commands.task_text import label_filter
from farm_cli.pages import every_page

if TYPE_CHECKING:
    from farm_cli.retries import RateGate

STATUSES = {
    "queued": tasks_pb2.TASK_STATUS_QUEUED,
    "running": tasks_pb2.TASK_STATUS_RUNNING,
    "succeeded": tasks_pb2.TASK_STATUS_SUCCEEDED,
    "failed": tasks_pb2.TASK_STATUS_FAILED,
    "cancelled": tasks_pb2.TASK_STATUS_CANCELLED,
}


def list_request(
    status: tasks_pb2.TaskStatus.ValueType,
    labels: Sequence[tuple[str, str]],
    *,
    page_size: int = 0,
    page_token: str = "",
) -> tasks_pb2.ListTasksRequest:
    """ListTasks' request for tasks in `status` (UNSPECIFIED: any) with every one of `labels`."""
    return tasks_pb2.ListTasksRequest(
        status=status,
        page_size=page_size,
        page_token=page_token,
        label=[f"{key}={value}" for key, value in labels],
    )


def every_task(
    farm: FarmConnection, request: tasks_pb2.ListTasksRequest, gate: RateGate
) -> list[tasks_pb2.Task]:
    """The tasks of every page of ListTasks `request`, newest first; rate limits waited out."""
    from farm_cli.retries import call_retrying

    def call(page_request: tasks_pb2.ListTasksRequest) -> tasks_pb2.ListTasksResponse:
        page: tasks_pb2.ListTasksResponse = call_retrying(
            lambda: farm.call(farm.tasks.ListTasks, page_request), gate
        )
        return page

    return list(every_page(call, request, "tasks").tasks)


def add_list_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `task list`."""
    listing = verbs.add_parser("list", help="list tasks, newest first")
    listing.add_argument("--status", choices=list(STATUSES), help="only tasks in this state")
    add_label_argument(
        listing, "only tasks with this label (repeatable: with all of them)", label_filter
    )
    add_page_arguments(listing)
    listing.set_defaults(run=list_tasks)


def list_tasks(args: argparse.Namespace) -> int:
    """ListTasks: one page, or with --all every page in one list."""
    request = list_request(
        STATUSES[args.status] if args.status else tasks_pb2.TASK_STATUS_UNSPECIFIED,
        args.labels,
        page_size=args.page_size,
        page_token=args.page_token,
    )
    return list_and_print(lambda farm: farm.tasks.ListTasks, request, "tasks", every=args.all)
