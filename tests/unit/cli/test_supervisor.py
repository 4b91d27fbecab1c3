"""The supervisor's rules, on stand-in processes and a clock the test moves."""

import signal
from pathlib import Path

import pytest

from farm_cli.launcher.supervisor import Phase, RestartPolicy, Role, Supervisor
from tests.clock import MovedClock


class FakeProcess:
    """A process whose life the test decides: it runs until the test makes it exit."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pid = 1000
        self.log_path = Path(f"/logs/{name}.log")
        self.starts = 0
        self.code: int | None = None
        self.signals: list[int] = []
        # Whether its pid file would be there (ManagedProcess writes it on start).
        self.pid_file = False

    def start(self) -> None:
        self.starts += 1
        self.pid += 1
        self.code = None
        self.pid_file = True

    def alive(self) -> bool:
        return self.code is None

    def exit(self, code: int) -> None:
        self.code = code

    def signal(self, signum: int) -> None:
        self.signals.append(signum)
        self.code = -signum

    def reap(self, *, keep_pid_file: bool = False) -> int | None:
        if self.code is not None and not keep_pid_file:
            self.pid_file = False
        return self.code

    def remove_pid_file(self) -> None:
        self.pid_file = False

    def log_tail(self, lines: int = 20) -> str:
        return f"the end of {self.name}'s log"


class Harness:
    def __init__(self, policy: RestartPolicy | None = None) -> None:
        self.clock = MovedClock()
        self.reports: list[str] = []
        self.ready = True
        self.supervisor = Supervisor(policy or RestartPolicy(), self.reports.append, self.clock)

    def watch(self, name: str, role: Role = Role.AGENT) -> FakeProcess:
        process = FakeProcess(name)
        process.start()
        self.supervisor.watch(process, lambda: self.ready, role)
        return process

    def after(self, seconds: float) -> None:
        self.clock.now += seconds
        self.supervisor.check()


def test_delays_double_from_one_second_up_to_thirty() -> None:
    policy = RestartPolicy()
    assert [policy.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert policy.delay(10_000) == 30


@pytest.mark.parametrize(
    ("first", "most"), [(0, 30), (-1, 30), (5, 1)], ids=["zero", "negative", "cap-below-first"]
)
def test_a_policy_that_makes_no_sense_is_refused(first: float, most: float) -> None:
    with pytest.raises(ValueError, match="first_delay"):
        RestartPolicy(first_delay=first, max_delay=most)


def test_a_killed_agent_is_restarted_after_a_second_and_reported_back_up() -> None:
    farm = Harness()
    agent = farm.watch("agent-2")
    agent.exit(-9)
    farm.after(0.1)
    assert farm.reports == ["agent-2 died (SIGKILL); restarting in 1 s"]
    assert farm.supervisor.phase("agent-2") is Phase.WAITING
    farm.after(0.5)
    assert agent.starts == 1
    farm.after(0.5)
    assert agent.starts == 2
    assert farm.supervisor.phase("agent-2") is Phase.STARTING
    farm.after(0.2)
    assert farm.reports[-1] == "agent-2 back up (0.2 s after its start)"
    assert farm.supervisor.phase("agent-2") is Phase.UP
    assert farm.supervisor.restarts("agent-2") == 1


def test_crashes_in_a_row_wait_longer_each_time_up_to_the_cap() -> None:
    farm = Harness(RestartPolicy(first_delay=1, max_delay=4, stable_after=60))
    scheduler = farm.watch("scheduler", Role.SERVICE)
    waits = []
    for _ in range(5):
        scheduler.exit(1)
        farm.after(0.1)
        waits.append(farm.reports[-1].split(";")[1].strip())
        farm.after(10)  # the restart
        farm.after(0.1)  # ready again, but not for long
    assert waits == [f"restarting in {n} s" for n in (1, 2, 4, 4, 4)]


def test_a_crash_after_a_long_healthy_run_waits_only_the_first_delay_again() -> None:
    farm = Harness(RestartPolicy(first_delay=1, stable_after=60))
    agent = farm.watch("agent-1")
    for _ in range(3):
        agent.exit(-9)
        farm.after(0.1)
        farm.after(10)
    agent.exit(-9)
    farm.after(0.1)
    assert farm.reports[-1].endswith("restarting in 8 s")
    farm.after(8)
    farm.after(61)
    agent.exit(-9)
    farm.after(0.1)
    assert farm.reports[-1] == "agent-1 died (SIGKILL); restarting in 1 s"


def test_a_drained_agent_that_exits_zero_is_not_restarted() -> None:
    farm = Harness()
    agent = farm.watch("agent-1")
    agent.exit(0)
    farm.after(0.1)
    farm.after(60)
    assert agent.starts == 1
    assert farm.supervisor.phase("agent-1") is Phase.ENDED
    assert farm.reports == ["agent-1 exited after draining (exit code 0); not restarting it"]


def test_a_part_that_ended_keeps_its_pid_file_unless_it_is_an_agent_that_drained() -> None:
    farm = Harness()
    agent = farm.watch("agent-1")
    storage = farm.watch("storage", Role.SERVICE)
    scheduler = farm.watch("scheduler", Role.SERVICE)
    agent.exit(0)
    storage.exit(0)
    scheduler.exit(-9)
    farm.after(0.1)
    # Down for good and down until its restart: `farm status` reads both from their files.
    assert (agent.pid_file, storage.pid_file, scheduler.pid_file) == (False, True, True)
    assert farm.supervisor.phase("scheduler") is Phase.WAITING


def test_a_service_that_exits_zero_unasked_is_restarted_as_a_crash_is() -> None:
    # A SIGTERM sent by someone else: the service drains and exits 0.
    farm = Harness()
    scheduler = farm.watch("scheduler", Role.SERVICE)
    scheduler.exit(0)
    farm.after(0.1)
    assert farm.reports == [
        "scheduler stopped without the launcher asking (exit code 0); restarting in 1 s"
    ]
    assert farm.supervisor.phase("scheduler") is Phase.WAITING
    farm.after(1)
    assert scheduler.starts == 2
    farm.after(0.1)
    assert farm.reports[-1] == "scheduler back up (0.1 s after its start)"
    assert farm.supervisor.restarts("scheduler") == 1


def test_a_service_that_ends_by_an_unasked_sigterm_is_not_said_to_have_died() -> None:
    # uvicorn (mcp, console) shuts down on SIGTERM, then ends by that signal again.
    farm = Harness()
    console = farm.watch("console", Role.SERVICE)
    console.exit(-15)
    farm.after(0.1)
    assert farm.reports == [
        "console stopped without the launcher asking (SIGTERM); restarting in 1 s"
    ]
    assert farm.supervisor.phase("console") is Phase.WAITING


def test_a_service_that_fails_is_restarted_and_its_log_tail_shown() -> None:
    farm = Harness()
    storage = farm.watch("storage", Role.SERVICE)
    storage.exit(3)
    farm.after(0.1)
    assert farm.reports[0].startswith("storage died (exit code 3); restarting in 1 s")
    assert "the end of storage's log" in farm.reports[0]


def test_infrastructure_exits_come_with_their_log() -> None:
    farm = Harness()
    nats = farm.watch("nats", Role.INFRASTRUCTURE)
    envoy = farm.watch("envoy", Role.INFRASTRUCTURE)
    nats.exit(-9)
    envoy.exit(0)
    farm.after(0.1)
    died, stopped = farm.reports
    assert died.startswith("nats died (SIGKILL); restarting in 1 s; last lines of /logs/nats.log")
    assert "the end of nats's log" in died
    assert stopped.startswith(
        "envoy stopped without the launcher asking (exit code 0); restarting in 1 s; "
        "last lines of /logs/envoy.log"
    )


def test_holding_a_process_during_its_backoff_cancels_the_restart() -> None:
    farm = Harness()
    agent = farm.watch("agent-1")
    agent.exit(-9)
    farm.after(0.1)
    farm.supervisor.hold("agent-1")
    farm.after(120)
    assert agent.starts == 1
    assert farm.supervisor.phase("agent-1") is Phase.HELD


def test_forgetting_everything_during_a_backoff_cancels_the_restart() -> None:
    farm = Harness()
    agent = farm.watch("agent-1")
    agent.exit(-9)
    farm.after(0.1)
    farm.supervisor.forget()
    farm.after(120)
    assert agent.starts == 1


def test_a_held_process_started_on_request_is_watched_again() -> None:
    farm = Harness()
    seaweedfs = farm.watch("seaweedfs", Role.INFRASTRUCTURE)
    farm.supervisor.hold("seaweedfs")
    seaweedfs.exit(0)
    farm.after(1)
    assert farm.reports == []
    farm.supervisor.start_now("seaweedfs")
    farm.supervisor.confirm_ready("seaweedfs")
    assert farm.supervisor.phase("seaweedfs") is Phase.UP
    assert farm.reports == ["seaweedfs back up (0.0 s after its start)"]
    seaweedfs.exit(-15)
    farm.after(0.1)
    assert farm.reports[-1].startswith(
        "seaweedfs stopped without the launcher asking (SIGTERM); restarting in 1 s"
    )


def test_starting_a_running_process_is_refused() -> None:
    farm = Harness()
    farm.watch("agent-1")
    with pytest.raises(RuntimeError, match="agent-1 is already running"):
        farm.supervisor.start_now("agent-1")


def test_a_restart_that_never_becomes_ready_is_killed_and_counts_as_a_crash() -> None:
    farm = Harness(RestartPolicy(ready_timeout=5))
    agent = farm.watch("agent-1")
    agent.exit(-9)
    farm.after(0.1)
    farm.ready = False
    farm.after(1)
    farm.after(6)
    assert farm.reports[-1] == "agent-1 not ready 5 s after its restart; killing it"
    farm.after(0.1)
    assert farm.reports[-1] == "agent-1 died (SIGKILL); restarting in 2 s"


def test_a_restart_that_cannot_exec_is_tried_again_later() -> None:
    farm = Harness()
    agent = farm.watch("agent-1")

    def cannot_start() -> None:
        raise FileNotFoundError("python vanished")

    agent.exit(1)
    farm.after(0.1)
    agent.start = cannot_start  # type: ignore[method-assign]
    farm.after(1)
    assert farm.reports[-1] == "restarting agent-1 failed (python vanished); trying again in 2 s"
    assert farm.supervisor.phase("agent-1") is Phase.WAITING


def test_an_unknown_name_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="no process called 'agent-9' is supervised"):
        Harness().supervisor.hold("agent-9")


def test_an_agent_watched_while_starting_is_reported_ready_once_it_answers() -> None:
    farm = Harness()
    farm.ready = False
    agent = FakeProcess("agent-3")
    agent.start()
    farm.supervisor.watch(agent, lambda: farm.ready, Role.AGENT, starting=True)
    farm.after(0.5)
    assert farm.supervisor.phase("agent-3") is Phase.STARTING
    farm.ready = True
    farm.after(0.5)
    assert farm.reports == ["agent-3 ready (1.0 s)"]
    assert farm.supervisor.phase("agent-3") is Phase.UP


class WedgedProbe:
    """A `wedged` probe whose answer the test sets; counts how often it is asked."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.asked = 0

    def __call__(self) -> str | None:
        self.asked += 1
        return self.reason


def test_a_wedged_process_is_stopped_and_started_again_saying_why() -> None:
    farm = Harness(RestartPolicy(wedged_interval=5))
    probe = WedgedProbe()
    nats = FakeProcess("nats")
    nats.start()
    farm.supervisor.watch(nats, lambda: farm.ready, Role.INFRASTRUCTURE, wedged=probe)
    farm.after(4)
    assert probe.asked == 0
    farm.after(1.5)
    assert (probe.asked, nats.signals, farm.reports) == (1, [], [])
    probe.reason = "JetStream stream '$G > FARM_TASKS' write error: no space left on device"
    farm.after(2)
    assert probe.asked == 1  # not again within its interval
    farm.after(3)
    assert nats.signals == [signal.SIGTERM]
    assert farm.reports[0] == (f"nats is wedged ({probe.reason}); stopping it to restart it")
    farm.after(0.1)
    assert farm.reports[1].startswith(
        "nats stopped for its restart (SIGTERM); restarting in 1 s; last lines of"
    )
    probe.reason = None
    farm.after(1)
    assert nats.starts == 2
    farm.after(10)  # starting: not asked until it is up again
    assert probe.asked == 2
    assert farm.reports[-1] == "nats back up (10.0 s after its start)"
    farm.after(5)
    assert probe.asked == 3 and nats.signals == [signal.SIGTERM] and nats.starts == 2


def test_an_agent_drained_for_a_restart_is_started_again_at_once() -> None:
    harness = Harness()
    agent = harness.watch("agent-1")
    harness.supervisor.drain_and_restart("agent-1")
    assert agent.signals == [signal.SIGTERM]
    agent.exit(0)  # it drained

    harness.after(0.1)

    assert agent.starts == 2
    assert harness.supervisor.restarts("agent-1") == 1
    assert "agent-1 drained for its restart (exit code 0); starting it" in harness.reports
    # A later drain of its own is a drain on purpose again: it stays down.
    harness.after(0.1)
    agent.exit(0)
    harness.after(0.1)
    assert harness.supervisor.phase("agent-1") is Phase.ENDED


def test_an_agent_that_had_drained_is_started_on_a_restart_and_one_starting_refused() -> None:
    harness = Harness()
    agent = harness.watch("agent-1")
    agent.exit(0)
    harness.after(0.1)
    assert harness.supervisor.phase("agent-1") is Phase.ENDED

    harness.supervisor.drain_and_restart("agent-1")

    assert agent.starts == 2
    assert harness.supervisor.phase("agent-1") is Phase.STARTING
    with pytest.raises(RuntimeError, match="agent-1 is not up \\(starting\\); try again later"):
        harness.supervisor.drain_and_restart("agent-1")
