"""One launcher per FARM_HOME: an fcntl lock on FARM_HOME/run/farm.lock holding its PID."""

import fcntl
import os
from pathlib import Path
from typing import IO

# lock_holder, how others probe the lock, is the SDK's: it finds the local farm with it.
from browserfarm.local_farm import LOCK_FILE
from browserfarm.local_farm import lock_holder as lock_holder
from farm_cli.launcher.leftovers import live_leftovers


class FarmAlreadyRunning(RuntimeError):
    """Another launcher holds this FARM_HOME, or processes of an earlier one still run."""


class FarmLock:
    """An exclusive lock on a FARM_HOME for as long as one launcher runs."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Takes the lock and records this PID in it; raises FarmAlreadyRunning if held.

        Does nothing if this FarmLock holds it already.
        """
        if self._file is not None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        lock_file = self.path.open("a+")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or "unknown"
            lock_file.close()
            raise FarmAlreadyRunning(
                f"a farm is already running with FARM_HOME {self.run_dir.parent} "
                f"(launcher PID {holder}); stop it first (Ctrl-C in its terminal, "
                f"or farm down with this FARM_HOME)"
            ) from None
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"{os.getpid()}\n")
        lock_file.flush()
        self._file = lock_file

    def release(self) -> None:
        """Clears the recorded PID and gives the lock up; does nothing if not held."""
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None


def check_no_leftovers(run_dir: Path) -> None:
    """Raises FarmAlreadyRunning if a pid file names a live process; removes stale ones.

    A launcher that was killed outright (SIGKILL) leaves its children running;
    starting again beside them would fail on busy ports with a less clear error.
    """
    leftovers = live_leftovers(run_dir)
    if leftovers:
        raise FarmAlreadyRunning(
            f"processes of an earlier farm still run: {', '.join(map(str, leftovers))}; stop "
            f"them (farm down, or kill <PID>) or, if those PIDs are not farm processes, delete "
            f"their pid files in {run_dir}"
        )
