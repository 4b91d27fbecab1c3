"""The latest FleetSnapshot as Prometheus gauges, refreshed every few seconds by a loop.

Labels are bounded: regions are the operator's (a handful), priorities and states
fixed sets; breakers are counted by state, never by host. Every region that has
an agent or a queue shows in `farm_agents`, with 0 where none is there, so an alert
can see a region without agents. With replicas, each scheduler shows the same
values: aggregate with max, not sum.
"""

import datetime as dt
from collections.abc import Iterator

from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from farm.admin.v1 import admin_pb2
from farm_core.breakers import BreakerState
from farm_core.periodic import Periodic
from farm_core.queue import ANY_REGION
from farm_scheduler.status.snapshot import FleetReader, FleetSnapshot

# The gauges need only what is now; the finished tasks' window is not shown.
_GAUGE_WINDOW = dt.timedelta(minutes=1)
AGENT_STATES = ("ready", "draining", "lost")


def agent_state(agent: admin_pb2.Agent) -> str:
    """ready, draining or lost (lost wins: a lost agent's drain cannot be seen through)."""
    if agent.lost:
        return "lost"
    return "draining" if agent.draining else "ready"


def region_of(agent: admin_pb2.Agent) -> str:
    """The agent's region as queues name it: `any` for none."""
    return agent.region or ANY_REGION


class FleetCollector(Collector):
    """Shows the latest snapshot; before the first one, every family without samples."""

    def __init__(self) -> None:
        self._snapshot: FleetSnapshot | None = None

    def show(self, snapshot: FleetSnapshot | None) -> None:
        """Shows `snapshot` from the next scrape on (None: nothing)."""
        self._snapshot = snapshot

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(_families().values())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = _families()
        snapshot = self._snapshot
        if snapshot is not None:
            _fill(families, snapshot)
        return iter(families.values())


def _families() -> dict[str, GaugeMetricFamily]:
    def gauge(name: str, text: str, labels: list[str] | None = None) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, text, labels=labels)

    queue = ["region", "priority"]
    families = [
        gauge(
            "farm_agents",
            "Agents with a recent heartbeat, by region and state.",
            ["region", "state"],
        ),
        gauge(
            "farm_agent_places",
            "Places of the agents that are not lost (one per task or session), by region and "
            "state: busy or free.",
            ["region", "state"],
        ),
        gauge(
            "farm_queue_pending_messages", "Tasks published and not yet handed to an agent.", queue
        ),
        gauge(
            "farm_queue_in_flight_messages",
            "Tasks handed to an agent and not acknowledged: running, or waiting to be offered "
            "again.",
            queue,
        ),
        gauge(
            "farm_queue_oldest_pending_age_seconds",
            "How long the oldest pending task of the queue has waited; 0 when none waits.",
            queue,
        ),
        gauge("farm_tasks", "Tasks not yet ended, by status: queued or running.", ["status"]),
        gauge("farm_breakers", "Target hosts' circuit breakers, by state.", ["state"]),
        gauge("farm_dead_letter_tasks", "Dead letters now: FAILED tasks not requeued."),
        gauge("farm_sessions_open", "Sessions open now, as the scheduler records them."),
        gauge(
            "farm_fleet_status_read_timestamp_seconds",
            "When the scheduler last read these gauges' values (Unix time).",
        ),
    ]
    return {family.name: family for family in families}


def _fill(families: dict[str, GaugeMetricFamily], snapshot: FleetSnapshot) -> None:
    regions = {region_of(agent) for agent in snapshot.agents}
    regions |= {queue.region for queue in snapshot.queues}
    agents = {(region, state): 0 for region in regions for state in AGENT_STATES}
    places = {(region, state): 0 for region in regions for state in ("busy", "free")}
    for agent in snapshot.agents:
        region = region_of(agent)
        agents[region, agent_state(agent)] += 1
        if not agent.lost:
            places[region, "busy"] += agent.busy_places
            places[region, "free"] += agent.free_places
    for (region, state), count in sorted(agents.items()):
        families["farm_agents"].add_metric([region, state], count)
    for (region, state), count in sorted(places.items()):
        families["farm_agent_places"].add_metric([region, state], count)
    for queue in snapshot.queues:
        labels = [queue.region, queue.priority.value]
        families["farm_queue_pending_messages"].add_metric(labels, queue.pending)
        families["farm_queue_in_flight_messages"].add_metric(labels, queue.in_flight)
        age = queue.oldest_pending_age_seconds
        families["farm_queue_oldest_pending_age_seconds"].add_metric(labels, age)
    families["farm_tasks"].add_metric(["queued"], snapshot.tasks.queued)
    families["farm_tasks"].add_metric(["running"], snapshot.tasks.running)
    by_state = {state: 0 for state in BreakerState}
    for breaker in snapshot.breakers:
        by_state[breaker.state] += 1
    for state, count in by_state.items():
        families["farm_breakers"].add_metric([state.value], count)
    families["farm_dead_letter_tasks"].add_metric([], snapshot.tasks.dead_letters)
    families["farm_sessions_open"].add_metric([], snapshot.open_sessions)
    read_at = snapshot.read_time.timestamp()
    families["farm_fleet_status_read_timestamp_seconds"].add_metric([], read_at)


fleet_collector = FleetCollector()
REGISTRY.register(fleet_collector)


class FleetGauges:
    """Reads a snapshot every `interval_seconds` for the gauges; a failed read keeps the last."""

    def __init__(self, reader: FleetReader, interval_seconds: float) -> None:
        self._reader = reader
        self._loop = Periodic(
            "fleet-gauges", self.refresh, interval_seconds, first_round_at_once=True
        )

    async def refresh(self) -> None:
        """Reads the farm now and shows it."""
        fleet_collector.show(await self._reader.read(_GAUGE_WINDOW))

    def start(self) -> None:
        """Starts refreshing."""
        self._loop.start()

    async def stop(self) -> None:
        """Stops refreshing; the gauges show nothing more."""
        await self._loop.stop()
        fleet_collector.show(None)
