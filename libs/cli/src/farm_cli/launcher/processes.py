"""Child processes of the launcher: own process group, log file, pid file, stop by PID."""

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one process of the farm."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    stop_timeout: float = 20.0


class ManagedProcess:
    """A started process: its log under `log_dir`, its PID in `run_dir/<name>.pid`.

    Each runs in its own session, so stopping it reaches its children too.
    """

    def __init__(self, spec: ProcessSpec, log_dir: Path, run_dir: Path) -> None:
        self.spec = spec
        self.log_path = log_dir / f"{spec.name}.log"
        self.pid_path = run_dir / f"{spec.name}.pid"
        self._popen: subprocess.Popen[bytes] | None = None
        # Whether the ended process's group was cleared: its PID may be reused later.
        self._reaped = False
        log_dir.mkdir(parents=True, exist_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)

    @property
    def name(self) -> str:
        """The process's name in the farm (nats, agent-1, ...)."""
        return self.spec.name

    @property
    def pid(self) -> int:
        """The process id; the process must have been started."""
        if self._popen is None:
            raise RuntimeError(f"{self.spec.name} was not started")
        return self._popen.pid

    def start(self) -> None:
        """Starts the process (again, once it has ended), appending its output to its log file."""
        if self.alive():
            raise RuntimeError(f"{self.spec.name} is already running (PID {self.pid})")
        env = {**os.environ, **self.spec.env}
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                list(self.spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.spec.cwd,
                start_new_session=True,
            )
        self._reaped = False
        self.pid_path.write_text(f"{self._popen.pid}\n")

    def exit_code(self) -> int | None:
        """The exit code if the process has ended, else None."""
        return None if self._popen is None else self._popen.poll()

    def alive(self) -> bool:
        """Whether the process is running."""
        return self._popen is not None and self._popen.poll() is None

    def signal(self, signum: int) -> None:
        """Sends `signum` to the process's whole group."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signum)

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` seconds; returns the exit code."""
        if self._popen is None:
            return None
        timeout = self.spec.stop_timeout if timeout is None else timeout
        self.signal(signal.SIGTERM)
        try:
            self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self._popen.wait(timeout=10)
        return self.reap()

    def reap(self) -> int | None:
        """Once the process has ended: kills what is left of its group, removes its pid file.

        Returns the exit code (negative: the signal that ended it), or None while it runs.
        """
        if self._popen is None or self._popen.poll() is None:
            return None
        if not self._reaped:
            self._reaped = True
            # Children that outlived their parent in the same group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._popen.pid, signal.SIGKILL)
            self.pid_path.unlink(missing_ok=True)
        return self._popen.returncode

    def log_tail(self, lines: int = 20) -> str:
        """The last `lines` lines of the process's log, to explain a failure."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class StartupError(RuntimeError):
    """A process did not become ready."""


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    process: ManagedProcess | None = None,
    interval: float = 0.1,
) -> None:
    """Polls `ready` until it returns True; raises StartupError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise StartupError(
                f"{what}: process exited with {process.exit_code()}; "
                f"log {process.log_path}:\n{process.log_tail()}"
            )
        if ready():
            return
        time.sleep(interval)
    tail = f"; log {process.log_path}:\n{process.log_tail()}" if process else ""
    raise StartupError(f"{what}: not ready after {timeout:.0f} s{tail}")


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# "low-high": free_port picks from these ports instead of the kernel's ephemeral ones,
# which outgoing connections take too (tests set it, a range per pytest worker).
PORT_RANGE_ENV = "FARM_FREE_PORT_RANGE"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (from FARM_FREE_PORT_RANGE when set)."""
    chosen = os.environ.get(PORT_RANGE_ENV, "")
    if chosen:
        low, _, high = chosen.partition("-")
        for _ in range(200):
            port = random.randint(int(low), int(high))
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind((host, port))
                except OSError:
                    continue
                return port
        raise OSError(f"no free port in {PORT_RANGE_ENV}={chosen}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
