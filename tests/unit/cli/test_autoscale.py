"""When the one-box farm grows and shrinks its agents: the policy and the scaler, on a
clock the test moves and a fleet of stand-in agents."""

import argparse

import pytest

from farm_cli.commands.up import AgentsOption, add_parser, autoscale_settings
from farm_cli.console import UsageError
from farm_cli.launcher.autoscale import (
    AutoscaleSettings,
    Drain,
    FleetSignals,
    ScaleUp,
    ScalingPolicy,
    parse_agents,
)
from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.scaler import (
    AgentScaler,
    Metrics,
    busy_places,
    oldest_wait,
    served_regions,
)
from farm_cli.launcher.supervisor import Phase
from tests.clock import MovedClock
from tests.farms import ROOT

SETTINGS = AutoscaleSettings(
    min_agents=1,
    max_agents=3,
    target_wait_seconds=5,
    cpu_percent=80,
    idle_seconds=30,
    cooldown_seconds=10,
    interval_seconds=1,
)


def signals(
    wait: float | None = 0.0,
    cpu: float | None = 10.0,
    busy: dict[str, int | None] | None = None,
    starting: int = 0,
    draining: int = 0,
) -> FleetSignals:
    return FleetSignals(wait, cpu, {"agent-1": 2} if busy is None else busy, starting, draining)


@pytest.fixture
def clock() -> MovedClock:
    return MovedClock()


@pytest.fixture
def policy(clock: MovedClock) -> ScalingPolicy:
    return ScalingPolicy(SETTINGS, clock)


def test_a_task_waiting_longer_than_the_target_starts_an_agent(policy: ScalingPolicy) -> None:
    assert policy.decide(signals(wait=4.9)) is None
    assert policy.decide(signals(wait=6.25)) == ScaleUp("oldest task waited 6.2 s")


def test_a_busy_cpu_starts_an_agent_only_while_tasks_wait(policy: ScalingPolicy) -> None:
    assert policy.decide(signals(wait=0, cpu=97)) is None
    assert policy.decide(signals(wait=1.5, cpu=97)) == ScaleUp(
        "CPU at 97% with tasks waiting (1.5 s)"
    )


def test_agents_start_one_at_a_time_with_a_cooldown(
    policy: ScalingPolicy, clock: MovedClock
) -> None:
    busy: dict[str, int | None] = {"agent-1": 2}
    assert isinstance(policy.decide(signals(wait=9, busy=busy)), ScaleUp)
    # The new agent is not ready yet: no second one meanwhile.
    assert policy.decide(signals(wait=9, busy=busy, starting=1)) is None
    busy["agent-2"] = 2
    clock.now += 9
    assert policy.decide(signals(wait=9, busy=busy)) is None
    clock.now += 1
    assert isinstance(policy.decide(signals(wait=9, busy=busy)), ScaleUp)


def test_no_agent_starts_beyond_the_most(policy: ScalingPolicy) -> None:
    full: dict[str, int | None] = {"agent-1": 2, "agent-2": 2, "agent-3": 2}
    assert policy.decide(signals(wait=60, cpu=100, busy=full)) is None


def test_an_agent_idle_for_the_idle_time_is_drained_newest_first(
    policy: ScalingPolicy, clock: MovedClock
) -> None:
    busy: dict[str, int | None] = {"agent-1": 0, "agent-2": 0, "agent-3": 1}
    assert policy.decide(signals(busy=busy)) is None
    clock.now += 29
    assert policy.decide(signals(busy=busy)) is None
    clock.now += 1
    assert policy.decide(signals(busy=busy)) == Drain("agent-2", "idle 30 s")
    # One at a time: nothing more while agent-2 drains.
    del busy["agent-2"]
    assert policy.decide(signals(busy=busy, draining=1)) is None
    # agent-1 is one of the MIN that always run (scraped without autoscaled="true"):
    # however long it idles, agent-3 goes first once it idles too.
    clock.now += 100
    assert policy.decide(signals(busy=busy)) is None
    busy["agent-3"] = 0
    policy.decide(signals(busy=busy))
    clock.now += 30
    assert policy.decide(signals(busy=busy)) == Drain("agent-3", "idle 30 s")


def test_work_restarts_an_agents_idle_time(policy: ScalingPolicy, clock: MovedClock) -> None:
    busy: dict[str, int | None] = {"agent-1": 1, "agent-2": 0}
    policy.decide(signals(busy=busy))
    clock.now += 20
    busy["agent-2"] = 1
    policy.decide(signals(busy=busy))
    busy["agent-2"] = 0
    clock.now += 1
    policy.decide(signals(busy=busy))
    clock.now += 29
    assert policy.decide(signals(busy=busy)) is None
    clock.now += 1
    assert policy.decide(signals(busy=busy)) == Drain("agent-2", "idle 30 s")


def test_no_agent_is_drained_below_the_least_or_while_tasks_wait(
    policy: ScalingPolicy, clock: MovedClock
) -> None:
    policy.decide(signals(busy={"agent-1": 0}))
    clock.now += 100
    assert policy.decide(signals(busy={"agent-1": 0})) is None
    both: dict[str, int | None] = {"agent-1": 0, "agent-2": 0}
    policy.decide(signals(busy=both))
    clock.now += 100
    assert policy.decide(signals(wait=0.5, busy=both)) is None


def test_unreadable_signals_change_nothing(policy: ScalingPolicy, clock: MovedClock) -> None:
    unknown: dict[str, int | None] = {"agent-1": 1, "agent-2": None}
    policy.decide(signals(busy=unknown))
    clock.now += 100
    # agent-2's metrics cannot be read: it is not known to be idle.
    assert policy.decide(signals(busy=unknown)) is None
    # Without the scheduler's queue ages, neither grow nor shrink.
    assert policy.decide(signals(wait=None, cpu=100, busy={"agent-1": 0, "agent-2": 0})) is None


@pytest.mark.parametrize(
    ("text", "expected"), [("2", (2, 2)), ("1..3", (1, 3)), (" 0 .. 4 ", (0, 4))]
)
def test_agents_are_a_count_or_a_range(text: str, expected: tuple[int, int]) -> None:
    assert parse_agents(text) == expected


@pytest.mark.parametrize("text", ["", "1-3", "a..b", "3..1", "0..0"])
def test_a_range_that_makes_no_sense_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="agents"):
        AutoscaleSettings(*parse_agents(text))


def up_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    return parser.parse_args(["up", *argv])


def test_farm_up_scales_with_a_range_and_its_options() -> None:
    settings = autoscale_settings(up_args("--agents", "1..3", "--scale-wait", "4"))
    assert settings == AutoscaleSettings(1, 3, target_wait_seconds=4)
    assert autoscale_settings(up_args("--agents", "2")) is None
    with pytest.raises(UsageError, match=r"MIN\.\.MAX"):
        autoscale_settings(up_args("--agents", "2", "--scale-idle", "5"))


def test_farm_up_reads_agents_once_into_a_count_or_a_range() -> None:
    # Parsed by argparse's type, and then only read: no second parse of the text.
    assert up_args().agents == AgentsOption(1, 1, scaled=False)
    assert up_args("--agents", "3").agents == AgentsOption(3, 3, scaled=False)
    assert up_args("--agents", " 2 .. 4 ").agents == AgentsOption(2, 4, scaled=True)
    assert up_args("--agents", "2..2").agents == AgentsOption(2, 2, scaled=True)


def test_a_scaled_farm_starts_the_least_and_reserves_ports_for_the_most() -> None:
    config = FarmConfig.from_environment(cwd=ROOT, environ={}, autoscale=AutoscaleSettings(1, 3))
    assert (config.agents, config.initial_agents) == (3, 1)
    assert {"agent-3", "agent-3 metrics"} <= {name for name, _ in config.ports.all_ports(3)}
    with pytest.raises(ValueError, match="most agents"):
        FarmConfig(root=ROOT, home=ROOT, agents=2, autoscale=AutoscaleSettings(1, 3))


def metrics(name: str, *samples: tuple[dict[str, str], float]) -> Metrics:
    return {name: list(samples)}


def test_the_signals_come_from_the_services_metrics() -> None:
    ages = metrics(
        "farm_queue_oldest_pending_age_seconds",
        ({"region": "any", "priority": "normal"}, 3.5),
        ({"region": "any", "priority": "high"}, 7.0),
    )
    assert oldest_wait(ages) == 7.0
    assert oldest_wait({}) == 0.0
    assert oldest_wait(None) is None
    places = metrics("agent_places", ({"state": "busy"}, 2.0), ({"state": "free"}, 0.0))
    assert busy_places(places) == 2
    assert busy_places({}) is None


class FakeFleet:
    """Agents whose phase the test sets; starts and drains are written down."""

    def __init__(self, phases: dict[str, Phase | None]) -> None:
        self.phases = phases
        self.actions: list[str] = []

    def phase(self, name: str) -> Phase | None:
        return self.phases[name]

    def start_agent(self, name: str) -> None:
        self.actions.append(f"start {name}")
        self.phases[name] = Phase.STARTING

    def drain_agent(self, name: str) -> None:
        self.actions.append(f"drain {name}")


def test_the_scaler_starts_and_drains_agents_and_says_why(clock: MovedClock) -> None:
    fleet = FakeFleet({"agent-1": Phase.UP, "agent-2": Phase.ENDED, "agent-3": None})
    pages: dict[str, Metrics | None] = {
        "scheduler": metrics("farm_queue_oldest_pending_age_seconds", ({}, 12.0)),
        "agent-1": metrics("agent_places", ({"state": "busy"}, 2.0)),
        "agent-2": metrics("agent_places", ({"state": "busy"}, 0.0)),
    }
    reports: list[str] = []
    scaler = AgentScaler(
        SETTINGS,
        fleet,
        {"agent-1": "agent-1", "agent-2": "agent-2", "agent-3": "agent-3"},
        "scheduler",
        reports.append,
        clock=clock,
        cpu_percent=lambda: 5.0,
        read=pages.get,
    )
    scaler.look()
    # A drained agent is started again before a new one is launched.
    assert fleet.actions == ["start agent-2"]
    assert reports == ["agent-2 started: oldest task waited 12.0 s"]
    # Looks within the interval read nothing.
    scaler.look()
    assert len(reports) == 1
    fleet.phases["agent-2"] = Phase.UP
    pages["scheduler"] = metrics("farm_queue_oldest_pending_age_seconds", ({}, 0.0))
    for _ in range(32):
        clock.now += 1
        scaler.look()
    assert fleet.actions == ["start agent-2", "drain agent-2"]
    assert reports[-1] == "agent-2 draining: idle 30 s"
    # While it drains, it is not counted; once it has exited, it may be started again.
    clock.now += 1
    assert scaler.signals().draining == 1
    fleet.phases["agent-2"] = Phase.ENDED
    assert scaler.signals().draining == 0


def test_a_wait_in_a_region_no_agent_of_ours_pulls_neither_starts_nor_keeps_agents(
    clock: MovedClock,
) -> None:
    # A task queued for a region with no agent here (a strict `region`), or one that
    # ended there while queued, whose message stays until it expires.
    ages = metrics(
        "farm_queue_oldest_pending_age_seconds",
        ({"region": "any", "priority": "normal"}, 0.0),
        ({"region": "nowhere", "priority": "normal"}, 600.0),
    )
    fleet = FakeFleet({"agent-1": Phase.UP, "agent-2": Phase.UP, "agent-3": None})
    pages: dict[str, Metrics | None] = {
        "scheduler": ages,
        "agent-1": metrics("agent_places", ({"state": "busy"}, 0.0)),
        "agent-2": metrics("agent_places", ({"state": "busy"}, 0.0)),
    }
    scaler = AgentScaler(
        SETTINGS,
        fleet,
        {"agent-1": "agent-1", "agent-2": "agent-2", "agent-3": "agent-3"},
        "scheduler",
        lambda _: None,
        clock=clock,
        cpu_percent=lambda: 5.0,
        read=pages.get,
        regions=served_regions([{}, {"FARM_AGENT_REGION": ""}]),
    )

    scaler.look()
    clock.now += SETTINGS.idle_seconds + 1
    scaler.look()

    assert fleet.actions == ["drain agent-2"]
    assert oldest_wait(ages) == 600.0
    assert served_regions([{}, {"FARM_AGENT_REGION": "eu-central"}]) == {"any", "eu-central"}
