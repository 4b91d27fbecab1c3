"""The launcher's side of `farm agent restart`: requests taken, answered, and old ones dropped."""

import os
import time
from pathlib import Path

from farm_cli.launcher.agent_restarts import (
    RESTARTS_DIR,
    AgentRestarts,
    read_answer,
    request_restart,
)
from farm_cli.launcher.supervisor import Phase


class FakeSupervisor:
    """Restarts on request; the test says when the agent is up again."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.count = 0
        self.now = Phase.UP

    def phase(self, name: str) -> Phase:
        return self.now

    def restarts(self, name: str) -> int:
        return self.count

    def drain_and_restart(self, name: str) -> None:
        self.asked.append(name)
        self.now = Phase.STARTING


def launcher(run_dir: Path, supervisor: FakeSupervisor) -> AgentRestarts:
    names = ("nats", "scheduler", "agent-1", "agent-2")
    return AgentRestarts(run_dir, supervisor, lambda: names, lambda line: None)  # type: ignore[arg-type]


def test_a_restart_is_answered_once_the_agent_is_up_again(tmp_path: Path) -> None:
    supervisor = FakeSupervisor()
    restarts = launcher(tmp_path, supervisor)
    answer = request_restart(tmp_path, "agent-2")

    restarts.look()
    assert supervisor.asked == ["agent-2"]
    assert read_answer(answer) is None  # draining, not up yet

    supervisor.count, supervisor.now = 1, Phase.UP
    restarts.look()
    outcome = read_answer(answer)
    assert outcome is not None and outcome.restarted and outcome.agent == "agent-2"
    assert not answer.exists()


def test_a_process_that_is_no_agent_is_refused_naming_the_agents(tmp_path: Path) -> None:
    supervisor = FakeSupervisor()
    restarts = launcher(tmp_path, supervisor)
    answer = request_restart(tmp_path, "scheduler")

    restarts.look()

    outcome = read_answer(answer)
    assert outcome is not None and not outcome.restarted
    assert outcome.message == (
        "this farm has started no agent called 'scheduler' (it has: agent-1, agent-2)"
    )
    assert supervisor.asked == []


def test_a_request_left_by_an_earlier_farm_is_dropped_not_acted_on(tmp_path: Path) -> None:
    request_restart(tmp_path, "agent-1")
    an_hour_ago = time.time() - 3600
    for path in (tmp_path / RESTARTS_DIR).iterdir():
        os.utime(path, (an_hour_ago, an_hour_ago))
    supervisor = FakeSupervisor()
    restarts = launcher(tmp_path, supervisor)

    restarts.look()

    assert supervisor.asked == []
    assert list((tmp_path / RESTARTS_DIR).iterdir()) == []


def test_a_request_made_as_the_launcher_starts_is_taken_whatever_its_file_time(
    tmp_path: Path,
) -> None:
    # A file's time is the kernel's coarse clock, a few ms behind time.time(): a request
    # made at once looked older than the launcher and was dropped as an earlier farm's.
    supervisor = FakeSupervisor()
    restarts = launcher(tmp_path, supervisor)
    request_restart(tmp_path, "agent-1")
    a_moment_before = time.time() - 0.01
    for path in (tmp_path / RESTARTS_DIR).iterdir():
        os.utime(path, (a_moment_before, a_moment_before))

    restarts.look()

    assert supervisor.asked == ["agent-1"]
