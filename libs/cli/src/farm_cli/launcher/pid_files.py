"""FARM_HOME/run/<name>.pid: the farm process each names, and whether that process still runs.

The launcher writes a process's pid file when it starts it and removes it when it
stops it (or an agent drains on purpose); a process that ended otherwise keeps its
file until it is started again, so the file names a part of the farm that is down.
"""

import contextlib
import enum
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

# A pid file is written once its process runs: a process that started later than
# the file was last written got the PID after the farm's process ended.
PID_FILE_SLACK_SECONDS = 1.0


class Life(enum.Enum):
    """Where the process a pid file names stands."""

    RUNNING = "running"
    # Ended, not yet reaped by its parent.
    ZOMBIE = "is a zombie"
    # No process has the PID, or one started after the farm's process ended took it.
    EXITED = "exited"


@dataclass(frozen=True)
class PidFile:
    """One pid file: the farm process's name (the file's stem) and the PID it holds."""

    name: str
    pid: int
    path: Path

    def life(self) -> Life:
        """Whether the farm's process with this PID runs, is a zombie, or has exited."""
        try:
            process = psutil.Process(self.pid)
            started = process.create_time()
            status = process.status()
        except psutil.NoSuchProcess:
            return Life.EXITED
        except psutil.AccessDenied:
            return Life.RUNNING
        if started > self.path.stat().st_mtime + PID_FILE_SLACK_SECONDS:
            return Life.EXITED
        return Life.ZOMBIE if status == psutil.STATUS_ZOMBIE else Life.RUNNING


def pid_files(run_dir: Path) -> Iterator[PidFile | Path]:
    """Each pid file in `run_dir` by name: a PidFile, or its path when it holds no PID."""
    for path in sorted(run_dir.glob("*.pid")):
        with contextlib.suppress(FileNotFoundError):
            text = path.read_text().strip()
            yield PidFile(path.stem, int(text), path) if text.isdigit() else path


@dataclass(frozen=True)
class NotRunning:
    """A part of the farm whose pid file names a process that is not running."""

    name: str
    pid: int
    life: Life

    def __str__(self) -> str:
        return f"{self.name}: not running (pid {self.pid} {self.life.value})"


def not_running(run_dir: Path) -> list[NotRunning]:
    """The parts the launcher started whose process has exited or is a zombie, by name."""
    down = []
    for entry in pid_files(run_dir):
        if isinstance(entry, PidFile):
            with contextlib.suppress(FileNotFoundError):
                life = entry.life()
                if life is not Life.RUNNING:
                    down.append(NotRunning(entry.name, entry.pid, life))
    return down


def running(run_dir: Path) -> list[str]:
    """`name (PID n)` of each part whose pid file names a running process; changes nothing."""
    alive = []
    for entry in pid_files(run_dir):
        if isinstance(entry, PidFile):
            with contextlib.suppress(FileNotFoundError):
                if entry.life() is Life.RUNNING:
                    alive.append(f"{entry.name} (PID {entry.pid})")
    return alive
