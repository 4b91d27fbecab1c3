"""Grows and shrinks the one-box farm's agents on queue wait and CPU (`farm up --agents 1..3`).

`AgentScaler.look()` runs in the supervising loop. Every interval it reads the
scheduler's `farm_queue_oldest_pending_age_seconds`, the machine's CPU (psutil) and
each agent's `agent_places{state="busy"}`, asks the ScalingPolicy (autoscale.py) and
starts one agent or drains one. A drain is SIGTERM: the agent stops taking tasks,
finishes its own within FARM_GRACE_SECONDS, hands back the rest without using an
attempt and exits 0, which the supervisor leaves alone.
"""

import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Protocol

import psutil
from prometheus_client.parser import text_string_to_metric_families

from farm_cli.launcher.autoscale import (
    AutoscaleSettings,
    Drain,
    FleetSignals,
    ScaleUp,
    ScalingPolicy,
    agent_number,
)
from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.launched import LaunchedProcesses
from farm_cli.launcher.processes import ProcessSpec
from farm_cli.launcher.services import HOST, ServiceLaunch
from farm_cli.launcher.supervisor import Phase, Role, Supervisor
from farm_core.queue import ANY_REGION

METRICS_TIMEOUT = 1.0
QUEUE_AGE = "farm_queue_oldest_pending_age_seconds"
REGION_VARIABLE = "FARM_AGENT_REGION"
"""The agent setting naming its region (farm_agent.settings); unset or empty: only `any`."""
AGENT_PLACES = "agent_places"

Metrics = dict[str, list[tuple[dict[str, str], float]]]


def read_metrics(url: str, timeout: float = METRICS_TIMEOUT) -> Metrics | None:
    """The samples of the Prometheus text page at `url` by name; None if it cannot be read."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode()
    except (OSError, urllib.error.URLError, ValueError):
        return None
    samples: Metrics = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def oldest_wait(metrics: Metrics | None, regions: Collection[str] | None = None) -> float | None:
    """The longest wait over the queues of `regions` (None: every queue); None without metrics.

    0 when none waits. A queue of a region no agent of ours pulls is none of ours: an
    agent started for it would not run its tasks, and a task that ended there while
    queued leaves its message behind until it expires.
    """
    if metrics is None:
        return None
    return max(
        (
            value
            for labels, value in metrics.get(QUEUE_AGE, [])
            if regions is None or labels.get("region") in regions
        ),
        default=0.0,
    )


def served_regions(agent_envs: Iterable[Mapping[str, str]]) -> frozenset[str]:
    """The regions whose queues agents with these environments pull: `any` and their own."""
    return frozenset({ANY_REGION, *(env.get(REGION_VARIABLE, "") for env in agent_envs)}) - {""}


def busy_places(metrics: Metrics | None) -> int | None:
    """An agent's busy places (tasks running, sessions open); None without metrics."""
    if metrics is None:
        return None
    busy = [value for labels, value in metrics.get(AGENT_PLACES, []) if labels["state"] == "busy"]
    return int(sum(busy)) if busy else None


class AgentFleet(Protocol):
    """The agents the scaler may start and drain."""

    def phase(self, name: str) -> Phase | None:
        """Where agent `name` stands; None if it was never started."""
        ...

    def start_agent(self, name: str) -> None:
        """Starts agent `name` without waiting for it to be ready."""
        ...

    def drain_agent(self, name: str) -> None:
        """Tells agent `name` to drain and exit."""
        ...


class LocalAgentFleet:
    """The local farm's agents: launched on first need, started again after a drain."""

    def __init__(
        self,
        launched: LaunchedProcesses,
        supervisor: Supervisor,
        specs: Mapping[str, tuple[ProcessSpec, Callable[[], bool]]],
        start_timeout: float,
    ) -> None:
        self._launched = launched
        self._supervisor = supervisor
        self._specs = specs
        self._start_timeout = start_timeout

    def phase(self, name: str) -> Phase | None:
        """Where agent `name` stands; None if it was never started."""
        if name not in self._launched.by_name():
            return None
        return self._supervisor.phase(name)

    def start_agent(self, name: str) -> None:
        """Launches agent `name` beside the other agents, or starts it again after a drain."""
        if name in self._launched.by_name():
            self._supervisor.start_now(name)
            return
        spec, ready = self._specs[name]
        process = self._launched.launch(
            spec, ready, self._start_timeout, Role.AGENT, group_of=tuple(self._specs)
        )
        self._supervisor.watch(process, ready, Role.AGENT, starting=True)

    def drain_agent(self, name: str) -> None:
        """SIGTERM to agent `name`: it finishes its tasks, hands back the rest, exits 0."""
        self._launched.by_name()[name].terminate()


class AgentScaler:
    """Reads the signals every interval and starts or drains one agent as the policy says."""

    def __init__(
        self,
        settings: AutoscaleSettings,
        fleet: AgentFleet,
        agent_metrics_urls: Mapping[str, str],
        scheduler_metrics_url: str,
        report: Callable[[str], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        cpu_percent: Callable[[], float | None] = lambda: psutil.cpu_percent(interval=None),
        read: Callable[[str], Metrics | None] = read_metrics,
        regions: Collection[str] | None = None,
    ) -> None:
        self.settings = settings
        # The regions whose queues the agents pull; None: every queue counts.
        self._regions = regions
        self.policy = ScalingPolicy(settings, clock)
        self._fleet = fleet
        self._agents: Sequence[str] = sorted(agent_metrics_urls, key=agent_number)
        self._agent_metrics_urls = agent_metrics_urls
        self._scheduler_metrics_url = scheduler_metrics_url
        self._report = report
        self._clock = clock
        self._cpu_percent = cpu_percent
        self._read = read
        self._draining: set[str] = set()
        self._next_look = clock()

    def look(self) -> None:
        """Once the interval has passed: reads the signals and takes the policy's step."""
        now = self._clock()
        if now < self._next_look:
            return
        self._next_look = now + self.settings.interval_seconds
        decision = self.policy.decide(self.signals())
        if isinstance(decision, ScaleUp):
            self._scale_up(decision)
        elif isinstance(decision, Drain):
            self._draining.add(decision.agent)
            self._fleet.drain_agent(decision.agent)
            self._report(f"{decision.agent} draining: {decision.reason}")

    def signals(self) -> FleetSignals:
        """What the policy decides on, read now."""
        busy: dict[str, int | None] = {}
        starting = 0
        for name in self._agents:
            phase = self._fleet.phase(name)
            if phase is not Phase.UP:
                self._draining.discard(name)
            if phase in (Phase.STARTING, Phase.WAITING):
                starting += 1
            elif phase is Phase.UP and name not in self._draining:
                busy[name] = busy_places(self._read(self._agent_metrics_urls[name]))
        return FleetSignals(
            oldest_wait_seconds=oldest_wait(self._read(self._scheduler_metrics_url), self._regions),
            cpu_percent=self._cpu_percent(),
            busy_places=busy,
            starting=starting,
            draining=len(self._draining),
        )

    def _scale_up(self, decision: ScaleUp) -> None:
        for name in self._agents:
            if self._fleet.phase(name) in (None, Phase.ENDED):
                try:
                    self._fleet.start_agent(name)
                except OSError as error:
                    self._report(f"{name} could not be started ({error}); {decision.reason}")
                    return
                self._report(f"{name} started: {decision.reason}")
                return


def local_scaler(
    config: FarmConfig,
    settings: AutoscaleSettings,
    launched: LaunchedProcesses,
    supervisor: Supervisor,
    launches: Sequence[ServiceLaunch],
    readiness: Callable[[ServiceLaunch], Callable[[], bool]],
    report: Callable[[str], None],
) -> AgentScaler:
    """The scaler of the local farm's agents `launches` (agent-1 … agent-MAX)."""
    specs = {launch.spec.name: (launch.spec, readiness(launch)) for launch in launches}
    fleet = LocalAgentFleet(launched, supervisor, specs, config.service_timeout)
    ports = config.ports
    metrics = {
        launch.spec.name: f"http://{HOST}:{ports.agent_metrics(index)}/metrics"
        for index, launch in enumerate(launches, start=1)
    }
    scheduler = f"http://{HOST}:{ports.scheduler_metrics}/metrics"
    # An agent's own environment wins over the launcher's, which it inherits.
    regions = served_regions({**os.environ, **launch.spec.env} for launch in launches)
    return AgentScaler(settings, fleet, metrics, scheduler, report, regions=regions)
