"""`farm task trace ID`: the task's spans, as the local farm's trace sink kept them, drawn."""

import argparse
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from farm.tasks.v1 import tasks_pb2
from farm_cli.client import call_farm
from farm_cli.console import CliError
from farm_cli.launcher.config import ProjectNotFound, find_project_root
from farm_cli.traces.spans import read_trace
from farm_cli.traces.waterfall import waterfall


def add_trace_parser(verbs: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `task trace`."""
    trace = verbs.add_parser(
        "trace",
        help="draw the task's spans as a waterfall (the local farm keeps them with --traces)",
        description="Reads the task's traceId (GetTask), then the spans `farm up --traces` "
        "kept under FARM_HOME/traces, and draws them: start, duration, service, span "
        "(nested under its parent) and a time bar. A farm that sends its traces elsewhere "
        "(OTEL_EXPORTER_OTLP_ENDPOINT) shows them there, under the same trace id.",
    )
    trace.add_argument("id")
    trace.add_argument(
        "--traces-dir", type=Path, help="where the spans are (default: FARM_HOME/traces)"
    )
    trace.add_argument(
        "--events", action="store_true", help="also list each span's events (egress decisions)"
    )
    trace.add_argument("--json", action="store_true", help="print the spans as JSON lines")
    trace.set_defaults(run=trace_task)


def traces_folder(environ: Mapping[str, str], cwd: Path) -> Path:
    """FARM_HOME/traces, FARM_HOME defaulting to the checkout's .farm."""
    if environ.get("FARM_HOME"):
        return cwd / environ["FARM_HOME"] / "traces"
    try:
        return find_project_root(cwd) / ".farm" / "traces"
    except ProjectNotFound as error:
        raise CliError(f"no traces folder: set FARM_HOME or pass --traces-dir ({error})") from error


def trace_task(args: argparse.Namespace) -> int:
    """Prints the task's trace; exit 1 when it has none or none of its spans were kept."""
    task: tasks_pb2.Task = call_farm(
        lambda farm: farm.tasks.GetTask, tasks_pb2.GetTaskRequest(id=args.id)
    )
    if not task.trace_id:
        raise CliError(
            f"task {task.id} has no trace id: the scheduler traces with an OTLP endpoint "
            "set (farm up --traces, or OTEL_EXPORTER_OTLP_ENDPOINT)"
        )
    folder = args.traces_dir or traces_folder(os.environ, Path.cwd())
    spans = read_trace(folder, task.trace_id)
    if not spans:
        raise CliError(
            f"no spans of trace {task.trace_id} under {folder}: was the farm started with "
            "--traces? (spans arrive within a few seconds of their end)"
        )
    if args.json:
        sys.stdout.writelines(span.to_json() + "\n" for span in spans)
        return 0
    width = shutil.get_terminal_size((140, 40)).columns
    print(waterfall(spans, width=width, events=args.events))
    return 0
