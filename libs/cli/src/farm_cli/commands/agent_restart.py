"""`farm agent restart`: drain, stop, start and await each named agent of the local farm.

For the agents `farm up` runs on this FARM_HOME: the command asks the launcher
(launcher/agent_restarts.py) and waits for its answer, one agent at a time, so the
others keep taking work meanwhile.
"""

import argparse
import json
import os
import time
from pathlib import Path

from farm_cli.commands.ranges import seconds
from farm_cli.console import CliError, UsageError

# How often the command looks for the launcher's answer.
POLL_SECONDS = 0.2


def add_parser(verbs: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `agent restart`."""
    restart = verbs.add_parser(
        "restart",
        help="restart agents of the local farm one at a time: drain, stop, start, await ready",
        description="For the agents `farm up` runs on this FARM_HOME (not through the API). "
        "Each named agent is drained as SIGTERM drains it (it stops taking work, finishes "
        "its tasks within FARM_GRACE_SECONDS and hands back the rest without using an "
        "attempt), started again by the launcher and awaited until ready, before the next "
        "one. An agent drained earlier (`farm agent drain`) is started at once.",
    )
    restart.add_argument("names", nargs="*", metavar="NAME", help="agent-1, agent-2, ...")
    restart.add_argument(
        "--all", action="store_true", help="every agent the farm runs, in order of number"
    )
    restart.add_argument(
        "--timeout",
        type=seconds,
        default=900.0,
        metavar="S",
        help="how long to wait for each agent to drain and be ready again (default 900)",
    )
    restart.add_argument("--json", action="store_true", help="print a JSON list, one per agent")
    restart.set_defaults(run=restart_agents)


def restart_agents(args: argparse.Namespace) -> int:
    """Restarts each agent in turn; stops at the first the launcher cannot restart."""
    from browserfarm.local_farm import RUN_DIR, farm_home, lock_holder

    if args.all == bool(args.names):
        raise UsageError("name the agents to restart, or give --all (not both)")
    home = farm_home(os.environ, Path.cwd())
    run_dir = home / RUN_DIR
    launcher = lock_holder(run_dir)
    if launcher is None:
        raise CliError(
            f"no farm is running with FARM_HOME {home}: `farm agent restart` restarts the "
            "agents of `farm up` on this machine"
        )
    names = args.names or running_agents(run_dir)
    outcomes = []
    for name in names:
        outcome = _restart(run_dir, launcher, name, args.timeout)
        outcomes.append(outcome)
        if not args.json:
            print(f"{name}: {outcome['message']} ({outcome['seconds']:.1f} s)", flush=True)
    if args.json:
        print(json.dumps(outcomes, indent=2), flush=True)
    return 0


def running_agents(run_dir: Path) -> list[str]:
    """The agents whose pid files name a running process, by number."""
    from farm_cli.launcher.autoscale import agent_number
    from farm_cli.launcher.pid_files import Life, PidFile, pid_files

    agents = [
        entry.name
        for entry in pid_files(run_dir)
        if isinstance(entry, PidFile)
        and entry.name.startswith("agent-")
        and entry.life() is Life.RUNNING
    ]
    return sorted(agents, key=agent_number)


def _restart(run_dir: Path, launcher: int, name: str, timeout: float) -> dict[str, object]:
    from browserfarm.local_farm import lock_holder
    from farm_cli.launcher.agent_restarts import read_answer, request_restart

    began = time.monotonic()
    answer_path = request_restart(run_dir, name)
    while (answer := read_answer(answer_path)) is None:
        if lock_holder(run_dir) != launcher:
            raise CliError(f"the farm's launcher (PID {launcher}) stopped before {name} was up")
        if time.monotonic() - began > timeout:
            raise CliError(
                f"{name} was not up again within {timeout:g} s; the launcher goes on with it "
                f"(its log: {run_dir.parent / 'logs' / name}.log)"
            )
        time.sleep(POLL_SECONDS)
    if not answer.restarted:
        raise CliError(f"{name} not restarted: {answer.message}")
    return {
        "agent": name,
        "message": answer.message,
        "seconds": round(time.monotonic() - began, 1),
    }
