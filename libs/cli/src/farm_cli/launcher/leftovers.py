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

# The launcher's stop order (docs/operations.md): the edge first, NATS last; a name
# not listed (a process of a newer launcher) goes first, as the edge does.
STOP_ORDER = ("agent-", "console", "mcp", "scheduler", "storage", "auth", "seaweedfs", "traces")
STOP_LAST = "nats"
# How often a stop looks whether the process has gone.
POLL_SECONDS = 0.1
# A pid file is written once its process runs: a process that started later than
# the file was last written got the PID after the farm's process ended.
PID_FILE_SLACK_SECONDS = 1.0


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


def _started_by_farm(pid: int, pid_file: Path) -> bool:
    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    return started <= pid_file.stat().st_mtime + PID_FILE_SLACK_SECONDS


def live_leftovers(run_dir: Path) -> list[Leftover]:
    """The farm processes FARM_HOME's pid files name that still run, in stop order.

    Pid files whose process has ended (or whose PID another process has taken since)
    are removed.
    """
    leftovers = []
    for pid_file in sorted(run_dir.glob("*.pid")):
        with contextlib.suppress(FileNotFoundError):
            text = pid_file.read_text().strip()
            if text.isdigit() and _started_by_farm(int(text), pid_file):
                leftovers.append(Leftover(pid_file.stem, int(text), pid_file))
            else:
                pid_file.unlink()
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
