"""The local farm's launched processes: started in stop groups, awaited ready, stopped in reverse.

Each process is started with how to tell it is ready, how long it may take and its
role; once ready it is handed to the supervisor, which restarts it if it crashes.
Processes started side by side are awaited together: each is reported ready as soon
as it is, and the first that exits or overruns its timeout fails the start.
"""

import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from farm_cli.launcher.processes import (
    ManagedProcess,
    ProcessSpec,
    exited_during_start,
    not_ready_in_time,
    wait_until,
)
from farm_cli.launcher.supervisor import Role, Supervisor

# How often the readiness probes of the starting processes are asked.
READY_POLL_INTERVAL = 0.2

BeforeStart = Callable[[], None]


class FarmInterrupted(RuntimeError):
    """A stop was asked for while the farm was starting."""


class LaunchedProcesses:
    """The farm's processes in start order, each with its readiness probe, timeout and role."""

    def __init__(
        self,
        supervisor: Supervisor,
        log_dir: Path,
        run_dir: Path,
        report: Callable[[str], None],
        stop_requested: Callable[[], bool],
    ) -> None:
        self._supervisor = supervisor
        self._log_dir = log_dir
        self._run_dir = run_dir
        self._report = report
        self._stop_requested = stop_requested
        # Processes in the order they were started, grouped as they are stopped:
        # a group's members get SIGTERM together, so agents drain side by side.
        self._stop_groups: list[list[ManagedProcess]] = []
        self._launched_at: dict[str, float] = {}
        # How each process is probed for readiness and how its exit is treated.
        self._readiness: dict[str, Callable[[], bool]] = {}
        self._roles: dict[str, Role] = {}
        self._timeouts: dict[str, float] = {}
        # What must happen before each restart of a process (weed's stale sockets go).
        self._before_start: dict[str, BeforeStart | None] = {}
        # Why a running process must be restarted though it runs (see Supervisor.watch).
        self._wedged: dict[str, Callable[[], str | None] | None] = {}

    @property
    def any_started(self) -> bool:
        """Whether a process has been started and not stopped yet."""
        return bool(self._stop_groups)

    def by_name(self) -> Mapping[str, ManagedProcess]:
        """The started processes by name, in start order."""
        return {p.spec.name: p for group in self._stop_groups for p in group}

    def launch(
        self,
        spec: ProcessSpec,
        ready: Callable[[], bool],
        timeout: float,
        role: Role,
        *,
        join_group: bool = False,
        group_of: Sequence[str] = (),
        before_start: BeforeStart | None = None,
        wedged: Callable[[], str | None] | None = None,
    ) -> ManagedProcess:
        """Starts `spec` in a stop group: its own, the last (`join_group`), or one of `group_of`'s.

        `group_of` names processes whose group it joins if one of them was started.
        `ready` says when it serves, within `timeout` seconds of now; `role` how the
        supervisor treats its exit; `before_start` runs before each restart; `wedged`
        says why it must be restarted while it runs.
        """
        process = ManagedProcess(spec, self._log_dir, self._run_dir)
        self._group_for(join_group, group_of).append(process)
        self._readiness[spec.name] = ready
        self._roles[spec.name] = role
        self._timeouts[spec.name] = timeout
        self._before_start[spec.name] = before_start
        self._wedged[spec.name] = wedged
        self._launched_at[spec.name] = time.monotonic()
        process.start()
        return process

    def _group_for(self, join_group: bool, group_of: Sequence[str]) -> list[ManagedProcess]:
        for group in self._stop_groups:
            if any(process.name in group_of for process in group):
                return group
        if not join_group or not self._stop_groups:
            self._stop_groups.append([])
        return self._stop_groups[-1]

    def await_ready(self, starting: list[ManagedProcess], *awaited: str) -> None:
        """Looks at the `starting` processes together until those named `awaited` are ready.

        With no names, until all are. Each process is reported ready, handed to the
        supervisor and taken off `starting` as soon as it is, awaited or not. Raises
        StartupError for the first that exits or is not ready within its timeout,
        FarmInterrupted if a stop is requested meanwhile. Names of processes not
        in `starting` (never launched, or ready already) are not waited for.
        """
        wanted = set(awaited)

        def waiting() -> bool:
            return any(not wanted or process.name in wanted for process in starting)

        while waiting():
            if self._stop_requested():
                names = ", ".join(process.name for process in starting)
                raise FarmInterrupted(f"stop requested while waiting for {names}")
            for process in list(starting):
                if self._ready_now(process):
                    starting.remove(process)
            if waiting():
                time.sleep(READY_POLL_INTERVAL)

    def _ready_now(self, process: ManagedProcess) -> bool:
        """Whether `process` is ready now (then supervised); raises if it never will be."""
        name = process.name
        if not process.alive():
            raise exited_during_start(name, process)
        ready = self._readiness[name]
        if ready():
            self._report(f"{name} ready ({time.monotonic() - self._launched_at[name]:.1f} s)")
            self._supervisor.watch(
                process,
                ready,
                self._roles[name],
                self._before_start[name],
                wedged=self._wedged[name],
            )
            return True
        if time.monotonic() - self._launched_at[name] > self._timeouts[name]:
            raise not_ready_in_time(name, self._timeouts[name], process)
        return False

    def start_again(self, name: str) -> None:
        """Starts the stopped process `name` with the same command; returns once it is ready."""
        process = self.by_name()[name]
        self._supervisor.start_now(name)
        self._launched_at[name] = time.monotonic()
        wait_until(
            self._readiness[name],
            timeout=self._timeouts[name],
            what=name,
            process=process,
            interval=READY_POLL_INTERVAL,
        )
        self._supervisor.confirm_ready(name)

    def stop_all(self) -> None:
        """Stops every process, group by group in reverse start order (SIGKILL after timeouts).

        Each group's line says what became of each: stopped now, or already ended before
        the stop (an agent that drained, a process that had exited), or killed.
        """
        while self._stop_groups:
            group = list(reversed(self._stop_groups.pop()))
            began = time.monotonic()
            # Looked at before the signals: what ended already is not what this stop did.
            running = {process.name for process in group if process.alive()}
            for process in group:
                process.terminate()
            outcomes = {}
            for process in group:
                code = process.stop()
                outcomes[process.name] = stop_outcome(
                    process.name in running, code, self._roles[process.name], process.spec
                )
            self._report(f"{outcome_summary(outcomes)} ({time.monotonic() - began:.1f} s)")


def stop_outcome(was_running: bool, code: int | None, role: Role, spec: ProcessSpec) -> str:
    """What became of one process at the farm's stop, from its exit `code` (None: none yet)."""
    if not was_running:
        if code is None:
            return "was not running"
        if code == 0 and role is Role.AGENT:
            return "had drained already"
        return f"had ended already (exit code {code})"
    if code == -signal.SIGKILL:
        return f"killed after its {spec.stop_timeout:g} s stop timeout"
    if code in (0, -signal.SIGTERM):
        return "stopped"
    return f"stopped (exit code {code})"


def outcome_summary(outcomes: Mapping[str, str]) -> str:
    """'agent-2, agent-1 stopped; agent-3 had drained already': names grouped by outcome."""
    names_by_outcome: dict[str, list[str]] = {}
    for name, outcome in outcomes.items():
        names_by_outcome.setdefault(outcome, []).append(name)
    return "; ".join(f"{', '.join(names)} {outcome}" for outcome, names in names_by_outcome.items())
