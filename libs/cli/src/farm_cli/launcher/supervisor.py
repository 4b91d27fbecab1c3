"""Restarts the farm's processes that die unexpectedly, with exponential backoff, and says so.

The launcher calls `check()` a few times a second (from `farm up`'s main loop or a
background thread). A process that ends without the launcher asking it to (a crash, a
signal, or a SIGTERM by hand that it answered by exiting 0) is started again after
1 s, 2 s, 4 s … up to 30 s; once it has stayed up for a minute, its next crash waits
1 s again. Left alone are a process held by `hold()` until `start_now()` (the
launcher stops it) and an agent that exits 0: it drained on purpose (`farm agent
drain`, SIGTERM, or storage refusing its credential), and starting it again would
undo the drain, unless it was drained by `drain_and_restart()` (`farm agent restart`).
A process that runs but is wedged for good, as its `wedged` probe
says (nats-server with a JetStream stream that failed a write), is stopped with
SIGTERM and started again the same way.
"""

import enum
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from farm_core.backoff import doubling_delay


@dataclass(frozen=True)
class RestartPolicy:
    """How soon a process that died is started again, and when it counts as healthy."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    # Up this long since its last start, a process's next crash waits first_delay again.
    stable_after: float = 60.0
    # A restarted process not ready within this is killed, which counts as another crash.
    ready_timeout: float = 90.0
    # How often a running process's `wedged` probe is asked.
    wedged_interval: float = 5.0

    def __post_init__(self) -> None:
        if self.first_delay <= 0 or self.max_delay < self.first_delay:
            raise ValueError(
                f"restart delays must satisfy 0 < first_delay <= max_delay, got "
                f"{self.first_delay} and {self.max_delay}"
            )
        if self.stable_after <= 0 or self.ready_timeout <= 0 or self.wedged_interval <= 0:
            raise ValueError("stable_after, ready_timeout and wedged_interval must be positive")

    def delay(self, crashes_in_a_row: int) -> float:
        """The wait before restarting after the `crashes_in_a_row`th crash in a row (from 1)."""
        return doubling_delay(self.first_delay, self.max_delay, crashes_in_a_row)


class Role(enum.Enum):
    """What a process is to the farm; decides what its exit means and how loudly it is told."""

    # Exit 0 is a drain on purpose (SIGTERM, `farm agent drain`, a refused credential).
    AGENT = "agent"
    SERVICE = "service"
    # NATS, SeaweedFS, Envoy: nothing works without them, so their exits come with their log.
    INFRASTRUCTURE = "infrastructure"


class Phase(enum.Enum):
    """Where a supervised process stands."""

    STARTING = "starting"  # started again, not ready yet
    UP = "up"
    WAITING = "waiting"  # died; restarts when its backoff is over
    ENDED = "ended"  # an agent that drained (exit 0); left alone
    HELD = "held"  # stopped on request; left alone until start_now()


class SupervisedProcess(Protocol):
    """What the supervisor needs of a process (ManagedProcess has it)."""

    @property
    def name(self) -> str:
        """The process's name in the farm."""
        ...

    @property
    def pid(self) -> int:
        """The running process's id."""
        ...

    @property
    def log_path(self) -> Path:
        """Where its output goes."""
        ...

    def start(self) -> None:
        """Starts it (again)."""
        ...

    def alive(self) -> bool:
        """Whether it runs."""
        ...

    def signal(self, signum: int) -> None:
        """Sends `signum` to its process group."""
        ...

    def reap(self, *, keep_pid_file: bool = False) -> int | None:
        """After it ended: clears its group and (unless kept) its pid file; its exit code."""
        ...

    def remove_pid_file(self) -> None:
        """Removes its pid file."""
        ...

    def log_tail(self, lines: int = 20) -> str:
        """The end of its log."""
        ...


def describe_exit(code: int) -> str:
    """'SIGKILL' (the signal's name) for a process a signal ended, else 'exit code N'."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


@dataclass(eq=False)
class _Watched:
    process: SupervisedProcess
    ready: Callable[[], bool]
    role: Role
    before_start: Callable[[], None] | None
    phase: Phase
    started_at: float
    crashes_in_a_row: int = 0
    restart_at: float = 0.0
    restarts: int = 0
    # Started by watch(starting=True) and not ready yet for the first time.
    first_start: bool = False
    # Why a running process is wedged for good (None: it is not); asked while UP.
    wedged: Callable[[], str | None] | None = None
    wedged_asked_at: float = 0.0
    # Set once it was sent SIGTERM for being wedged: why, for the report of its end.
    stopped_for: str | None = None
    # An agent drained by drain_and_restart(): its exit 0 starts it again at once.
    restart_after_drain: bool = False


class Supervisor:
    """Watches processes that are up; restarts those that crash; reports each step."""

    def __init__(
        self,
        policy: RestartPolicy,
        report: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._report = report
        self._clock = clock
        self._watched: dict[str, _Watched] = {}
        # check() runs on the supervising thread, hold()/start_now() on the caller's.
        self._lock = threading.RLock()

    def watch(
        self,
        process: SupervisedProcess,
        ready: Callable[[], bool],
        role: Role,
        before_start: Callable[[], None] | None = None,
        *,
        starting: bool = False,
        wedged: Callable[[], str | None] | None = None,
    ) -> None:
        """Supervises `process`, which is up, or just started and not ready (`starting`).

        `before_start` runs before each restart. `wedged`, asked every
        `policy.wedged_interval` while the process is up, says why it must be
        restarted though it runs (None: it need not be).
        """
        phase = Phase.STARTING if starting else Phase.UP
        now = self._clock()
        with self._lock:
            self._watched[process.name] = _Watched(
                process,
                ready,
                role,
                before_start,
                phase,
                now,
                first_start=starting,
                wedged=wedged,
                wedged_asked_at=now,
            )

    def forget(self) -> None:
        """Stops supervising everything (the farm is stopping)."""
        with self._lock:
            self._watched.clear()

    def phase(self, name: str) -> Phase:
        """Where the process `name` stands."""
        with self._lock:
            return self._entry(name).phase

    def restarts(self, name: str) -> int:
        """How often the supervisor has started `name` again."""
        with self._lock:
            return self._entry(name).restarts

    def check(self) -> None:
        """One look at every process: notes exits, restarts those due, reports readiness."""
        with self._lock:
            for watched in list(self._watched.values()):
                self._check_one(watched)

    def hold(self, name: str) -> SupervisedProcess:
        """Leaves `name` alone (a pending restart is cancelled) until start_now(name)."""
        with self._lock:
            watched = self._entry(name)
            watched.phase = Phase.HELD
            return watched.process

    def start_now(self, name: str) -> SupervisedProcess:
        """Starts `name` at once if it is not running (held, waiting or ended)."""
        with self._lock:
            watched = self._entry(name)
            if watched.process.alive():
                raise RuntimeError(f"{name} is already running (PID {watched.process.pid})")
            watched.process.reap()
            self._start(watched)
            return watched.process

    def drain_and_restart(self, name: str) -> None:
        """Drains agent `name` (SIGTERM) and starts it once it exits; one that ended, at once.

        RuntimeError, saying why, for an agent on its way up or held by the launcher.
        """
        with self._lock:
            watched = self._entry(name)
            if watched.phase is Phase.ENDED:
                watched.process.reap()
                self._restart(watched)
            elif watched.phase is Phase.UP:
                watched.restart_after_drain = True
                watched.process.signal(signal.SIGTERM)
            else:
                raise RuntimeError(f"{name} is not up ({watched.phase.value}); try again later")

    def confirm_ready(self, name: str) -> None:
        """Records that `name`, started by start_now(), answered its readiness probe."""
        with self._lock:
            watched = self._entry(name)
            if watched.phase is Phase.STARTING:
                self._now_up(watched)

    def _entry(self, name: str) -> _Watched:
        try:
            return self._watched[name]
        except KeyError:
            raise KeyError(f"no process called {name!r} is supervised") from None

    def _check_one(self, watched: _Watched) -> None:
        if watched.phase in (Phase.ENDED, Phase.HELD):
            return
        now = self._clock()
        if watched.phase is Phase.WAITING:
            if now >= watched.restart_at:
                self._restart(watched)
            return
        if not watched.process.alive():
            self._ended(watched, now)
        elif watched.phase is Phase.UP:
            self._check_wedged(watched, now)
        elif watched.phase is Phase.STARTING:
            if watched.ready():
                self._now_up(watched)
            elif now - watched.started_at > self.policy.ready_timeout:
                self._report(
                    f"{watched.process.name} not ready {self.policy.ready_timeout:.0f} s after "
                    f"its restart; killing it"
                )
                watched.process.signal(signal.SIGKILL)

    def _check_wedged(self, watched: _Watched, now: float) -> None:
        if watched.wedged is None or watched.stopped_for is not None:
            return
        if now - watched.wedged_asked_at < self.policy.wedged_interval:
            return
        watched.wedged_asked_at = now
        reason = watched.wedged()
        if reason is None:
            return
        watched.stopped_for = reason
        self._report(f"{watched.process.name} is wedged ({reason}); stopping it to restart it")
        watched.process.signal(signal.SIGTERM)

    def _ended(self, watched: _Watched, now: float) -> None:
        process = watched.process
        # The pid file stays while the process is down, so `farm status` names it.
        code = process.reap(keep_pid_file=True)
        if code is None:
            return
        if code == 0 and watched.role is Role.AGENT and watched.restart_after_drain:
            watched.restart_after_drain = False
            self._report(f"{process.name} drained for its restart (exit code 0); starting it")
            self._restart(watched)
            return
        watched.restart_after_drain = False
        if code == 0 and watched.role is Role.AGENT:
            # A drain on purpose: the agent is not a part the farm misses.
            watched.phase = Phase.ENDED
            process.remove_pid_file()
            self._report(f"{process.name} exited after draining (exit code 0); not restarting it")
            return
        if now - watched.started_at >= self.policy.stable_after:
            watched.crashes_in_a_row = 0
        watched.crashes_in_a_row += 1
        delay = self.policy.delay(watched.crashes_in_a_row)
        watched.phase = Phase.WAITING
        watched.restart_at = now + delay
        # A service answers a SIGTERM from someone else by exiting 0, or, as uvicorn's
        # (mcp, console) do, by ending with that signal once it has shut down: not
        # asked by the launcher, so it is missed as a crash is, but it did not crash.
        unasked_stop = code in (0, -signal.SIGTERM)
        how = "stopped without the launcher asking" if unasked_stop else "died"
        if watched.stopped_for is not None:
            how, watched.stopped_for = "stopped for its restart", None
        line = f"{process.name} {how} ({describe_exit(code)}); restarting in {delay:g} s"
        if watched.role is Role.INFRASTRUCTURE or code > 0:
            line += f"; last lines of {process.log_path}:\n{process.log_tail()}"
        self._report(line)

    def _restart(self, watched: _Watched) -> None:
        try:
            self._start(watched)
        except OSError as error:
            watched.crashes_in_a_row += 1
            delay = self.policy.delay(watched.crashes_in_a_row)
            watched.phase = Phase.WAITING
            watched.restart_at = self._clock() + delay
            self._report(
                f"restarting {watched.process.name} failed ({error}); trying again in {delay:g} s"
            )
            return
        watched.restarts += 1

    def _start(self, watched: _Watched) -> None:
        if watched.before_start is not None:
            watched.before_start()
        watched.process.start()
        watched.first_start = False
        watched.phase = Phase.STARTING
        watched.started_at = self._clock()

    def _now_up(self, watched: _Watched) -> None:
        watched.phase = Phase.UP
        took = self._clock() - watched.started_at
        if watched.first_start:
            watched.first_start = False
            self._report(f"{watched.process.name} ready ({took:.1f} s)")
            return
        self._report(f"{watched.process.name} back up ({took:.1f} s after its start)")


class SupervisingThread:
    """Calls `look` (a supervisor's check(), and the scaler's look) from a daemon thread."""

    def __init__(self, look: Callable[[], None]) -> None:
        self._look = look
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()

    def start(self, interval: float) -> None:
        """Checks every `interval` seconds from now on; RuntimeError if it already does."""
        if self._thread is not None:
            raise RuntimeError("the farm is already supervised")
        self._halt.clear()
        self._thread = threading.Thread(
            target=self._check_until_halted, args=(interval,), name="farm-supervisor", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stops checking; waits up to `timeout` seconds for the current check to end."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._halt.set()
            thread.join(timeout=timeout)

    def _check_until_halted(self, interval: float) -> None:
        while not self._halt.wait(interval):
            self._look()
