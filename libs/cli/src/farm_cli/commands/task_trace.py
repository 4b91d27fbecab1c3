"""`farm task trace ID`: a task's (or a trace id's) spans, as the local trace sink kept them."""

import argparse
import os
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_cli.client import call_farm
from farm_cli.console import CliError

# W3C trace ids: what audit records (`traceId`) and log lines (`trace_id`) show.
TRACE_ID = re.compile(r"[0-9a-f]{32}")


def add_trace_parser(verbs: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `task trace`."""
    trace = verbs.add_parser(
        "trace",
        help="draw the task's spans as a waterfall (the local farm keeps them with --traces)",
        description="Reads the task's traceId (GetTask), then the spans `farm up --traces` "
        "kept under FARM_HOME/traces, and draws them: start, duration, service, span "
        "(nested under its parent) and a time bar. A farm that sends its traces elsewhere "
        "(OTEL_EXPORTER_OTLP_ENDPOINT) shows them there, under the same trace id. ID may "
        "also be a session id (ses_…: its traceId, GetSession) or a trace id kept there "
        "(an audit record's traceId, a log line's trace_id: a call's).",
    )
    trace.add_argument("id", help="a task id, a session id, or a trace id")
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
    from browserfarm.local_farm import ProjectNotFound, find_project_root

    if environ.get("FARM_HOME"):
        return cwd / environ["FARM_HOME"] / "traces"
    try:
        return find_project_root(cwd) / ".farm" / "traces"
    except ProjectNotFound as error:
        raise CliError(f"no traces folder: set FARM_HOME or pass --traces-dir ({error})") from error


def trace_task(args: argparse.Namespace) -> int:
    """Prints the task's trace; exit 1 when it has none or none of its spans were kept."""
    from farm_cli.traces.spans import read_trace, spans_of_task
    from farm_cli.traces.waterfall import waterfall

    folder = args.traces_dir or traces_folder(os.environ, Path.cwd())
    # A kept trace of that id is drawn as it is: task ids never name a trace.
    spans = read_trace(folder, args.id) if TRACE_ID.fullmatch(args.id) else []
    if not spans:
        trace_id = traced_id(args.id)
        spans = read_trace(folder, trace_id)
        if not spans:
            raise CliError(
                f"no spans of trace {trace_id} under {folder}: was the farm started with "
                "--traces? (spans arrive within a few seconds of their end)"
            )
        # One CLI command's calls share a trace: a task of a batch shows its own calls.
        spans = spans_of_task(spans, args.id)
    if args.json:
        sys.stdout.writelines(span.to_json() + "\n" for span in spans)
        return 0
    width = shutil.get_terminal_size((140, 40)).columns
    print(waterfall(spans, width=width, events=args.events))
    return 0


def traced_id(task_or_session_id: str) -> str:
    """The trace id of a task (GetTask) or session (GetSession); CliError when it has none."""
    # farm_core.sessions holds the pattern beside the session store, which imports nats.
    from farm_core.sessions import SESSION_ID_PATTERN

    found: tasks_pb2.Task | sessions_pb2.Session
    if SESSION_ID_PATTERN.fullmatch(task_or_session_id):
        found = call_farm(
            lambda farm: farm.sessions.GetSession,
            sessions_pb2.GetSessionRequest(id=task_or_session_id),
        )
        kind = "session"
    else:
        found = call_farm(
            lambda farm: farm.tasks.GetTask, tasks_pb2.GetTaskRequest(id=task_or_session_id)
        )
        kind = "task"
    if not found.trace_id:
        raise CliError(
            f"{kind} {found.id} has no trace id: the scheduler traces with an OTLP endpoint "
            "set (farm up --traces, or OTEL_EXPORTER_OTLP_ENDPOINT)"
        )
    return str(found.trace_id)
