"""`farm status`: the whole farm at a glance, through AdminService.GetFleetStatus.

Readable tables by default (agents, queues, tasks, breakers, dead letters,
sessions); `--json` prints the FleetStatus as the HTTP API returns it. Against the
local farm (FARM_URL not set), the processes its launcher started that are not
running are named too, from FARM_HOME's pid files alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from farm.admin.v1 import admin_pb2
from farm.tasks.v1 import tasks_pb2
from farm_cli.client import call_farm
from farm_cli.commands.ranges import whole_number
from farm_cli.console import CliError, print_message
from farm_cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from farm_cli.launcher.pid_files import NotRunning

MAX_WINDOW_MINUTES = 1440


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `status`."""
    status = commands.add_parser(
        "status",
        help="the farm at a glance: agents, queues, recent tasks, breakers, dead letters "
        "(needs the admin scope of the bootstrap tenant)",
    )
    status.add_argument("--json", action="store_true", help="print the FleetStatus as JSON")
    status.add_argument(
        "--window",
        # 0 is the request's "unset" (the farm's 15 min), so it is not a window one can ask for.
        type=whole_number(MAX_WINDOW_MINUTES, least=1),
        default=0,
        metavar="MINUTES",
        help="count the tasks that ended in the last MINUTES (1 to 1440; default 15)",
    )
    status.set_defaults(run=show_status)


def show_status(args: argparse.Namespace) -> int:
    """GetFleetStatus, printed as tables or as JSON, and the local farm's parts that are down.

    Exits PARTS_DOWN when FARM_HOME's pid files name processes that are not running;
    when the status cannot be read, those are printed before the error.
    """
    import grpc

    from browserfarm.local_farm import RUN_DIR
    from farm_cli.launcher.pid_files import not_running

    home = local_farm_home(os.environ, Path.cwd())
    down = not_running(home / RUN_DIR) if home is not None else []
    request = admin_pb2.GetFleetStatusRequest(window_minutes=args.window)
    try:
        fleet = call_farm(lambda farm: farm.admin.GetFleetStatus, request)
    except (grpc.RpcError, CliError):
        _print_down(down, home, sys.stderr)
        if home is not None:
            _print_orphans(home / RUN_DIR, sys.stderr)
        raise
    if args.json:
        print_message(fleet)
        _print_down(down, home, sys.stderr)
    else:
        print(render_status(fleet), flush=True)
        _print_down(down, home, sys.stdout)
    return ExitCode.PARTS_DOWN if down else ExitCode.OK


def local_farm_home(environ: Mapping[str, str], cwd: Path) -> Path | None:
    """FARM_HOME when the farm called is its own; None when FARM_URL names a farm.

    A farm FARM_URL names may be another machine's, whose processes are not ours to see.
    """
    from browserfarm.local_farm import ProjectNotFound, farm_home

    if environ.get("FARM_URL"):
        return None
    try:
        return farm_home(environ, cwd)
    except ProjectNotFound:
        return None


def _print_down(down: Sequence[NotRunning], home: Path | None, stream: TextIO) -> None:
    if down:
        title = f"Not running ({len(down)} of the local farm's processes; logs in {home}/logs):"
        print("\n".join([title, *(f"  {part}" for part in down)]), file=stream, flush=True)


def _print_orphans(run_dir: Path, stream: TextIO) -> None:
    """Names the processes a killed launcher left serving, so "no farm" is not all said."""
    from browserfarm.local_farm import lock_holder
    from farm_cli.launcher.pid_files import running

    if lock_holder(run_dir) is not None:
        return
    orphans = running(run_dir)
    if orphans:
        print(
            f"Still running without their launcher (it was killed): {', '.join(orphans)}; "
            "`farm down` stops them",
            file=stream,
            flush=True,
        )


def render_status(fleet: admin_pb2.FleetStatus) -> str:
    """The status as an operator reads it: one section per part of the farm."""
    now = fleet.read_time.ToDatetime(dt.UTC)
    window = fleet.tasks.window_minutes
    sections = [
        f"browserfarm at {now:%Y-%m-%d %H:%M:%S} UTC",
        _agents(fleet.agents, now),
        _queues(fleet.queues),
        _tasks(fleet.tasks),
        _breakers(fleet.open_breakers, fleet.open_breaker_count, now),
        f"Dead letters: {fleet.dead_letters.total} "
        f"({fleet.dead_letters.recent} in the last {window} min; `farm deadletter list`)",
        f"Sessions open: {fleet.open_sessions}",
    ]
    return "\n\n".join(sections)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows in columns as wide as their widest cell, two spaces apart, indented."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]


def ago(moment: dt.datetime, now: dt.datetime) -> str:
    """`3 s ago`, `4 min ago`, `2 h ago`."""
    seconds = max(0, round((now - moment).total_seconds()))
    return duration(seconds) + " ago"


def duration(seconds: float) -> str:
    """`12 s`, `4 min`, `2 h` (rounded down past the first unit)."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds // 60:.0f} min"
    return f"{seconds // 3600:.0f} h"


def agent_state(agent: admin_pb2.Agent) -> str:
    """lost, draining or ready."""
    if agent.lost:
        return "LOST"
    return "draining" if agent.draining else "ready"


def _agents(agents: Sequence[admin_pb2.Agent], now: dt.datetime) -> str:
    states = [agent_state(agent) for agent in agents]
    counts = ", ".join(f"{states.count(s)} {s.lower()}" for s in ("ready", "draining", "LOST"))
    title = f"Agents: {len(agents)} ({counts})"
    if not agents:
        return f"{title}\n  none: no agent has sent a heartbeat lately"
    rows = [
        [
            agent.id,
            agent.region or "any",
            agent.version or "?",
            state,
            f"{agent.busy_places}/{agent.concurrency}",
            str(agent.browsers),
            str(len(agent.running_task_ids)),
            str(len(agent.session_ids)),
            ago(agent.heartbeat_time.ToDatetime(dt.UTC), now),
        ]
        for agent, state in zip(agents, states, strict=True)
    ]
    headers = ["ID", "REGION", "VERSION", "STATE", "BUSY", "BROWSERS", "TASKS", "SESSIONS"]
    return "\n".join([title, *table([*headers, "LAST HEARTBEAT"], rows)])


def _queues(queues: Sequence[admin_pb2.QueueStatus]) -> str:
    if not queues:
        return "Queues: none yet"
    rows = [
        [
            queue.region,
            tasks_pb2.Priority.Name(queue.priority).removeprefix("PRIORITY_").lower(),
            str(queue.pending),
            str(queue.in_flight),
            duration(queue.oldest_pending_age_seconds) if queue.pending else "-",
        ]
        for queue in queues
    ]
    headers = ["REGION", "PRIORITY", "PENDING", "IN FLIGHT", "OLDEST WAITS"]
    return "\n".join(["Queues:", *table(headers, rows)])


def _tasks(counts: admin_pb2.TaskCounts) -> str:
    return (
        f"Tasks: {counts.queued} queued, {counts.running} running now; "
        f"in the last {counts.window_minutes} min {counts.succeeded} succeeded, "
        f"{counts.failed} failed, {counts.cancelled} cancelled"
    )


def _breakers(breakers: Sequence[admin_pb2.BreakerStatus], count: int, now: dt.datetime) -> str:
    if not count:
        return "Circuit breakers: none open"
    rows = [
        [
            breaker.host,
            breaker.state.replace("_", "-"),
            str(breaker.failures),
            ago(breaker.open_time.ToDatetime(dt.UTC), now)
            if breaker.HasField("open_time")
            else "-",
        ]
        for breaker in breakers
    ]
    more = [f"  ... and {count - len(breakers)} more"] if count > len(breakers) else []
    lines = table(["HOST", "STATE", "FAILURES", "OPENED"], rows)
    return "\n".join([f"Circuit breakers: {count} not closed", *lines, *more])
