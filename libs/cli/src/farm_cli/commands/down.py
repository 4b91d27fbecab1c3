"""`farm down`: stop the farm `farm up` runs on this FARM_HOME, from another terminal."""

import argparse
import contextlib
import os
import signal
import time
from pathlib import Path

from farm_cli.commands.ranges import seconds
from farm_cli.console import CliError

# How often `farm down` looks whether the launcher has let go of FARM_HOME.
POLL_SECONDS = 0.1


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `down`."""
    down = commands.add_parser(
        "down",
        help="stop the local farm (the launcher holding FARM_HOME), as Ctrl-C in its terminal",
        description="Sends SIGTERM to the `farm up` launcher holding FARM_HOME/run/farm.lock "
        "and waits until every process it started has stopped and the lock is free. With no "
        "launcher (one killed outright), stops the processes FARM_HOME's pid files name.",
    )
    down.add_argument(
        "--timeout",
        type=seconds,
        default=120.0,
        metavar="S",
        help="how long to wait for the farm to stop, in seconds (default 120)",
    )
    down.set_defaults(run=stop_farm)


def stop_farm(args: argparse.Namespace) -> int:
    """SIGTERM to FARM_HOME's launcher, then waits until it lets go of FARM_HOME."""
    from browserfarm.local_farm import RUN_DIR, farm_home, lock_holder

    home = farm_home(os.environ, Path.cwd())
    run_dir = home / RUN_DIR
    launcher = lock_holder(run_dir)
    if launcher is None:
        return _stop_leftovers(home, args.timeout)
    print(f"stopping the farm of FARM_HOME {home} (launcher PID {launcher})", flush=True)
    # A launcher that ended between the look and the signal is what was asked for.
    with contextlib.suppress(ProcessLookupError):
        os.kill(launcher, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while lock_holder(run_dir) == launcher:
        if time.monotonic() > deadline:
            raise CliError(
                f"the farm (launcher PID {launcher}) is still stopping after {args.timeout:g} s; "
                f"its processes' logs are in {home / 'logs'}"
            )
        time.sleep(POLL_SECONDS)
    print("the farm has stopped", flush=True)
    return 0


def _stop_leftovers(home: Path, timeout: float) -> int:
    """Stops the processes a killed launcher left running, by their pid files."""
    from browserfarm.local_farm import RUN_DIR
    from farm_cli.launcher.config import FarmConfig
    from farm_cli.launcher.edge import remove_edge_record
    from farm_cli.launcher.leftovers import live_leftovers, stop_leftover

    leftovers = live_leftovers(home / RUN_DIR)
    if not leftovers:
        raise CliError(f"no farm is running with FARM_HOME {home}")
    print(
        f"no launcher holds FARM_HOME {home}, but processes of the farm it started still "
        f"run; stopping them: {', '.join(map(str, leftovers))}",
        flush=True,
    )
    deadline = time.monotonic() + timeout
    for leftover in leftovers:
        if leftover.name == "seaweedfs":
            # As the launcher does: weed's graceful stop waits 15 s for nothing of use.
            weed_deadline = time.monotonic() + FarmConfig.seaweedfs_stop_timeout
            stop_leftover(leftover, min(deadline, weed_deadline))
        elif not stop_leftover(leftover, deadline):
            print(f"{leftover.name} did not stop within {timeout:g} s; killed it", flush=True)
    # The farm it names has stopped, as after a clean stop.
    remove_edge_record(home)
    print("the farm has stopped", flush=True)
    return 0
