"""`farm task watch ID`: a task's events as they happen, until it ends (WatchTask)."""

import argparse
import sys

from farm.tasks.v1 import tasks_pb2
from farm_cli.client import connect
from farm_cli.console import print_message
from farm_cli.exit_codes import ExitCode

FINAL = frozenset(
    {
        tasks_pb2.TASK_STATUS_SUCCEEDED,
        tasks_pb2.TASK_STATUS_FAILED,
        tasks_pb2.TASK_STATUS_CANCELLED,
    }
)


def add_watch_parser(verbs: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `task watch`."""
    watch = verbs.add_parser(
        "watch",
        help="follow the task's events live until it ends: a line each on a terminal, one "
        "JSON event a line when piped or with --json; exit 3 unless it succeeded",
    )
    watch.add_argument("id")
    watch.add_argument("--json", action="store_true", help="print each event as one JSON line")
    watch.set_defaults(run=watch_task)


ENDED = frozenset(
    {tasks_pb2.TASK_STATUS_SUCCEEDED, tasks_pb2.TASK_STATUS_FAILED, tasks_pb2.TASK_STATUS_CANCELLED}
)
"""The states a task ends in."""


def status_name(status: int) -> str:
    """SUCCEEDED for TASK_STATUS_SUCCEEDED, and so on."""
    return tasks_pb2.TaskStatus.Name(status).removeprefix("TASK_STATUS_")  # type: ignore[arg-type]


def event_line(event: tasks_pb2.TaskEvent) -> str:
    """One event as a person reads it: time, state, what the attempt waits for, and results."""
    task = event.task
    parts = [event.time.ToDatetime().strftime("%H:%M:%S"), f"{status_name(event.status):<9}"]
    if task.attempts:
        parts.append(f"attempt {task.attempts}")
    if task.agent_id:
        parts.append(f"on {task.agent_id}")
    if task.status_message:
        # What a running attempt waits for ("waiting for storage: ...; retrying").
        parts.append(task.status_message)
    if event.status == tasks_pb2.TASK_STATUS_SUCCEEDED:
        parts.append(result_summary(task))
    elif task.HasField("error") and task.error.code:
        parts.append(f"{task.error.code}: {task.error.message}")
    return "  ".join(part for part in parts if part)


def result_summary(task: tasks_pb2.Task) -> str:
    """What a succeeded task produced, in a few words."""
    artifacts = ", ".join(f"{a.id} ({a.content_type})" for a in task.result.artifacts)
    cached = " (cached)" if task.cached else ""
    return (artifacts or task.result.title or "done") + cached


def watch_task(args: argparse.Namespace) -> int:
    """WatchTask: each event as it comes; the exit code by the last status."""
    readable = not args.json and sys.stdout.isatty()
    last = tasks_pb2.TASK_STATUS_UNSPECIFIED
    with connect() as farm:
        request = tasks_pb2.WatchTaskRequest(id=args.id)
        for event in farm.tasks.WatchTask(request, metadata=farm.metadata):
            last = event.status
            if readable:
                print(event_line(event), flush=True)
            else:
                print_message(event, one_line=True)
    if last == tasks_pb2.TASK_STATUS_SUCCEEDED:
        return ExitCode.OK
    return ExitCode.TASKS_FAILED if last in FINAL else ExitCode.ERROR
