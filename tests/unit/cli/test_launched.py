"""Processes launched side by side are awaited together (launched.py), on short real processes."""

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm_cli.launcher.launched import FarmInterrupted, LaunchedProcesses
from farm_cli.launcher.processes import ManagedProcess, ProcessSpec, StartupError
from farm_cli.launcher.supervisor import RestartPolicy, Role, Supervisor


class Farmlet:
    """A LaunchedProcesses over a temporary folder, with what it reported."""

    def __init__(self, home: Path) -> None:
        self.reports: list[str] = []
        self.stopping = False
        self.supervisor = Supervisor(RestartPolicy(), self.reports.append)
        self.launched = LaunchedProcesses(
            self.supervisor, home / "logs", home / "run", self.reports.append, self._stopping
        )
        # Which launched processes answer their readiness probe.
        self.ready: set[str] = set()

    def _stopping(self) -> bool:
        return self.stopping

    def launch(
        self,
        name: str,
        code: str = "import time; time.sleep(60)",
        role: Role = Role.SERVICE,
        *,
        join_group: bool = False,
    ) -> ManagedProcess:
        spec = ProcessSpec(name, [sys.executable, "-c", code], stop_timeout=5)
        return self.launched.launch(
            spec, lambda: name in self.ready, 60, role, join_group=join_group
        )


@pytest.fixture
def farmlet(tmp_path: Path) -> Iterator[Farmlet]:
    farmlet = Farmlet(tmp_path)
    yield farmlet
    farmlet.supervisor.forget()
    farmlet.launched.stop_all()


def test_awaiting_one_returns_once_it_is_ready_and_keeps_the_others_starting(
    farmlet: Farmlet,
) -> None:
    starting = [farmlet.launch("slow"), farmlet.launch("quick")]
    farmlet.ready.add("quick")
    farmlet.launched.await_ready(starting, "quick")
    assert [process.name for process in starting] == ["slow"]
    assert [line.split()[:2] for line in farmlet.reports] == [["quick", "ready"]]
    farmlet.ready.add("slow")
    farmlet.launched.await_ready(starting)
    assert starting == []
    assert [line.split()[0] for line in farmlet.reports] == ["quick", "slow"]


def test_one_that_exits_while_another_is_awaited_fails_the_start_with_its_log(
    farmlet: Farmlet,
) -> None:
    broken = "import sys; print('no config here'); sys.exit(3)"
    starting = [farmlet.launch("broken", broken), farmlet.launch("awaited")]
    with pytest.raises(StartupError) as failure:
        farmlet.launched.await_ready(starting, "awaited")
    assert str(failure.value).startswith("broken: process exited with 3")
    assert "no config here" in str(failure.value)


def test_a_stop_requested_while_starting_interrupts_the_wait(farmlet: Farmlet) -> None:
    starting = [farmlet.launch("never")]
    farmlet.stopping = True
    with pytest.raises(FarmInterrupted, match="never"):
        farmlet.launched.await_ready(starting)


def test_names_not_starting_are_not_waited_for(farmlet: Farmlet) -> None:
    starting = [farmlet.launch("unready")]
    farmlet.launched.await_ready(starting, "traces")
    assert [process.name for process in starting] == ["unready"]
    assert farmlet.reports == []


def test_the_stop_says_which_agents_it_stopped_and_which_had_drained(farmlet: Farmlet) -> None:
    # A drained agent exits 0 of itself before the farm stops: the stop did not stop it.
    farmlet.launch("nats")
    running = farmlet.launch("agent-1", role=Role.AGENT)
    drained = farmlet.launch("agent-2", "pass", Role.AGENT, join_group=True)
    crashed = farmlet.launch("agent-3", "import sys; sys.exit(3)", Role.AGENT, join_group=True)
    deadline = time.monotonic() + 30
    while (drained.alive() or crashed.alive()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.alive()
    farmlet.launched.stop_all()
    [agents, nats] = [line.rsplit(" (", 1)[0] for line in farmlet.reports]
    # In reverse start order, as they are stopped.
    assert agents == (
        "agent-3 had ended already (exit code 3); agent-2 had drained already; agent-1 stopped"
    )
    assert nats == "nats stopped"


def test_the_stop_says_a_process_that_outlived_its_stop_timeout_was_killed(
    farmlet: Farmlet,
) -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    process = farmlet.launched.launch(
        ProcessSpec("weed", [sys.executable, "-c", stubborn], stop_timeout=0.5),
        lambda: True,
        60,
        Role.INFRASTRUCTURE,
    )
    # Its SIGTERM handler must be in place before the stop, or SIGTERM ends it.
    deadline = time.monotonic() + 30
    while "SigIgn" not in ignored_signals(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    farmlet.launched.stop_all()
    assert farmlet.reports[-1].startswith("weed killed after its 0.5 s stop timeout ("), (
        farmlet.reports
    )


def ignored_signals(pid: int) -> str:
    """'SigIgn' once process `pid` ignores SIGTERM (its /proc status's SigIgn mask), else ''."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:") and int(line.split()[1], 16) & (1 << 14):
            return "SigIgn"
    return ""
