"""Processes a killed launcher left running: found by FARM_HOME's pid files, stopped by PID.

A launcher killed outright (SIGKILL, the OOM killer) cannot stop its children: they
keep serving, holding the farm's ports, with no launcher to stop them.
"""

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from farm_cli.launcher.pid_files import Life, PidFile, pid_files

# The launcher's stop order (docs/operations.md): the edge first, NATS last; a name
# not listed (a process of a newer launcher) goes first, as the edge does.
STOP_ORDER = ("agent-", "console", "mcp", "scheduler", "storage", "auth", "seaweedfs", "traces")
STOP_LAST = "nats"
# How often a stop looks whether the process has gone.
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Leftover:
    """A farm process that its pid file names and that still runs."""

    name: str
    pid: int
    pid_file: Path

    def __str__(self) -> str:
        return f"{self.name} (PID {self.pid})"


def _stop_rank(name: str) -> int:
    if name == STOP_LAST:
        return len(STOP_ORDER) + 1
    for rank, prefix in enumerate(STOP_ORDER, start=1):
        if name.startswith(prefix):
            return rank
    return 0


def live_leftovers(run_dir: Path) -> list[Leftover]:
    """The farm processes FARM_HOME's pid files name that still run, in stop order.

    Pid files whose process has ended (or whose PID another process has taken since)
    are removed.
    """
    leftovers = []
    for entry in pid_files(run_dir):
        with contextlib.suppress(FileNotFoundError):
            if isinstance(entry, PidFile) and entry.life() is not Life.EXITED:
                leftovers.append(Leftover(entry.name, entry.pid, entry.path))
            else:
                (entry.path if isinstance(entry, PidFile) else entry).unlink()
    return sorted(leftovers, key=lambda leftover: _stop_rank(leftover.name))


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _group(leader: int) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(ProcessLookupError, psutil.Error):
            if os.getpgid(process.pid) == leader:
                members.append(process)
    return members


def stop_leftover(leftover: Leftover, deadline: float) -> bool:
    """SIGTERM to the process alone, SIGKILL past `deadline`, as the launcher does.

    Then whatever of its group (the launcher starts each process in a group of its
    own) outlives it is killed: only the processes that were in the group before the
    stop, so never one that got a PID since. Returns whether it stopped of itself.
    """
    group = _group(leftover.pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(leftover.pid, signal.SIGTERM)
    stopped_itself = True
    while not _gone(leftover.pid):
        if time.monotonic() > deadline:
            stopped_itself = False
            break
        time.sleep(POLL_SECONDS)
    for member in group:
        # psutil checks that the PID still names the process it saw (its start time).
        with contextlib.suppress(psutil.Error):
            member.kill()
    with contextlib.suppress(FileNotFoundError):
        leftover.pid_file.unlink()
    return stopped_itself
