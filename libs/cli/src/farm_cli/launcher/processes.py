"""Child processes of the launcher: own process group, log file, pid file, stop by PID."""

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from farm_core.free_ports import free_port

# How often stop() looks whether a signalled process has ended.
STOP_POLL_INTERVAL = 0.05


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

    Each runs in its own session, so stopping it reaches its children too. A PID is
    signalled only while its process is not yet reaped: until then the kernel cannot
    give the number (nor the group id) to another process. So every reap and every
    signal goes through one lock, and an ended process's group is cleared before
    the process is reaped.
    """

    def __init__(self, spec: ProcessSpec, log_dir: Path, run_dir: Path) -> None:
        self.spec = spec
        self.log_path = log_dir / f"{spec.name}.log"
        self.pid_path = run_dir / f"{spec.name}.pid"
        self._popen: subprocess.Popen[bytes] | None = None
        # Held while reaping or signalling (the supervisor's thread polls too).
        self._lock = threading.Lock()
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
        with self._lock, self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                list(self.spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.spec.cwd,
                start_new_session=True,
            )
        self.pid_path.write_text(f"{self._popen.pid}\n")

    def exit_code(self) -> int | None:
        """The exit code if the process has ended, else None."""
        with self._lock:
            return self._poll()

    def alive(self) -> bool:
        """Whether the process is running."""
        with self._lock:
            return self._popen is not None and self._poll() is None

    def signal(self, signum: int) -> None:
        """Sends `signum` to the process's whole group, unless the process has ended."""
        with self._lock:
            if self._popen is not None and self._poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._popen.pid, signum)

    def send_signal(self, signum: int) -> None:
        """Sends `signum` to the process only (not its children), unless it has ended."""
        with self._lock:
            if self._popen is not None and self._poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._popen.pid, signum)

    def terminate(self) -> None:
        """SIGTERM to the process alone, which stops its children itself.

        Not to its group: an agent's Playwright driver would end at once and take the
        browsers of the tasks the agent was to finish with it. What outlives the
        process in its group is SIGKILLed when it is reaped (and by stop's SIGKILL).
        """
        self.send_signal(signal.SIGTERM)

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM (terminate), then SIGKILL to the group after `timeout` s; the exit code."""
        if self._popen is None:
            return None
        timeout = self.spec.stop_timeout if timeout is None else timeout
        self.terminate()
        if not self._ended_within(timeout):
            self.signal(signal.SIGKILL)
            if not self._ended_within(10):
                raise subprocess.TimeoutExpired(list(self.spec.argv), 10)
        return self.reap()

    def reap(self, *, keep_pid_file: bool = False) -> int | None:
        """Once the process has ended: removes its pid file (its group was cleared on reaping).

        Returns the exit code (negative: the signal that ended it), or None while it runs.
        With `keep_pid_file` the file stays, naming a part of the farm that is down
        (`farm status` reads it) until the process is started again or stopped.
        """
        code = self.exit_code()
        if code is not None and not keep_pid_file:
            self.remove_pid_file()
        return code

    def remove_pid_file(self) -> None:
        """Removes the pid file: the process is not one the farm misses."""
        self.pid_path.unlink(missing_ok=True)

    def _ended_within(self, timeout: float) -> bool:
        # Popen.wait would reap outside the lock, so this polls instead.
        deadline = time.monotonic() + timeout
        while self.exit_code() is None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(STOP_POLL_INTERVAL)
        return True

    def _poll(self) -> int | None:
        """The exit code, reaping an ended process; called with the lock held.

        Children that outlived it in its group are SIGKILLed first, while the
        unreaped process still holds the group's id.
        """
        popen = self._popen
        if popen is None or popen.returncode is not None:
            return None if popen is None else popen.returncode
        try:
            ended = os.waitid(os.P_PID, popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            ended = None  # reaped by someone else: its group id is no longer ours to signal
        if ended is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(popen.pid, signal.SIGKILL)
        return popen.poll()

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
            raise exited_during_start(what, process)
        if ready():
            return
        time.sleep(interval)
    raise not_ready_in_time(what, timeout, process)


def exited_during_start(what: str, process: ManagedProcess) -> StartupError:
    """The error for `process` having ended before it was ready, with its log's tail."""
    return StartupError(
        f"{what}: process exited with {process.exit_code()}; "
        f"log {process.log_path}:\n{process.log_tail()}"
    )


def not_ready_in_time(what: str, timeout: float, process: ManagedProcess | None) -> StartupError:
    """The error for `what` not being ready within `timeout` seconds, with its log's tail."""
    tail = f"; log {process.log_path}:\n{process.log_tail()}" if process else ""
    return StartupError(f"{what}: not ready after {timeout:.0f} s{tail}")


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def distinct_free_port(taken: set[int], attempts: int = 100) -> int:
    """A free TCP port on 127.0.0.1 that is not in `taken` (then added to it).

    Ports drawn one by one for processes that have not bound them yet can repeat.
    """
    for _ in range(attempts):
        port = free_port()
        if port not in taken:
            taken.add(port)
            return port
    raise OSError("no free port found")


def free_ports(count: int) -> list[int]:
    """`count` distinct ports on 127.0.0.1 nothing listens on right now."""
    taken: set[int] = set()
    return [distinct_free_port(taken) for _ in range(count)]
