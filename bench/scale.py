"""The scale curve: throughput as the farm gets more agent processes.

For each count of agents (default 1, 2, 4) it starts a farm of its own with that many
agents, each with the same FARM_AGENT_CONCURRENCY (default 2), and runs N small tasks
through Envoy (`POST /v1/tasks:run`, which answers when the task has finished) from
enough concurrent clients to keep every agent's places busy (default twice the farm's
places). The tasks take turns: the HTML content of a small page served by the bench
on 127.0.0.1, then a 1280x800 PNG screenshot of it; every one asks for a fresh run
(`cacheTtlSeconds: 0`). Per-host politeness and the key's rate limit are lifted, so
the only limits are the agents' places and the machine.

It prints one Markdown table: tasks/s, p50/p95 latency, errors, the CPU time per task
of each kind of process (a process with all its children, from /proc: the agents with
their Chromiums, the services, NATS, SeaweedFS, Envoy, and the bench's own client), and
the agents' memory (PSS) after the run; with the load average at the start.

`--netns` runs the same on the multi-host farm of network namespaces that the fault
tests use (tests/netns_farm.py: a NATS cluster of three, two replicas of each service,
PostgreSQL, three agent hosts) with 3, then 2, then 1 agents (needs root; not in
`make bench`).

    .venv/bin/python bench/scale.py [--n 48] [--agents 1,2,4] [--agent-concurrency 2]
    .venv/bin/python bench/scale.py --netns
"""

import argparse
import asyncio
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import psutil
from screenshots import PAGE_HTML, TASK_TIMEOUT_MS, VIEWPORT, Measurement, ShotFailed, measure

from farm_agent.browser.memory import tree_proportional_bytes
from farm_agent.metrics import process_tree
from farm_cli.launcher.ports import MAX_AGENTS
from farm_cli.launcher.processes import ManagedProcess

from harness import bounded, local_farm, progress_reporter, serve_page

BENCH = "scale"
MIB = 1024 * 1024
REQUEST_TIMEOUT_SECONDS = TASK_TIMEOUT_MS / 1000 + 15
# The order of the CPU columns; kinds a farm does not have read "—".
KINDS = ("agent", "scheduler", "auth", "storage", "envoy", "nats", "seaweedfs", "postgres")
report = progress_reporter(BENCH)


def agent_env(concurrency: int) -> dict[str, str]:
    """Agent settings of every farm of the bench: its places, politeness out of the way."""
    return {
        "FARM_AGENT_CONCURRENCY": str(concurrency),
        # Every task visits the bench's one page host: the farm-wide per-host limits
        # (4 at once, 10 starts a second by default) would cap the farm, not the agents.
        "FARM_AGENT_HOST_MAX_CONCURRENCY": "1000",
        "FARM_AGENT_HOST_MAX_RATE": "1000",
    }


class Farm(Protocol):
    """What the bench needs of a farm, local (LocalFarm) or on namespaces (NetnsFarm)."""

    @property
    def envoy_url(self) -> str:
        """Where clients reach the farm."""

    @property
    def admin_key(self) -> str:
        """An API key that may run tasks."""

    @property
    def processes(self) -> Mapping[str, ManagedProcess]:
        """The farm's processes by name (`agent-1`, `scheduler-2`, `nats`...)."""


def kind_of(name: str) -> str:
    """A process's kind: its name without the replica's number (`auth-2` → `auth`)."""
    return name.split("-")[0]


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of `root` and its descendants so far, with their reaped children's."""
    total = 0.0
    for pid in process_tree(root):
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue  # Ended since the tree was read; its parent counts it once reaped.
        total += times.user + times.system + times.children_user + times.children_system
    return total


def cpu_by_kind(farm: Farm) -> dict[str, float]:
    """CPU seconds so far of the farm's running processes by kind, and of this bench."""
    spent: dict[str, float] = {"bench": time.process_time()}
    for name, process in farm.processes.items():
        if process.alive():
            spent[kind_of(name)] = spent.get(kind_of(name), 0.0) + tree_cpu_seconds(process.pid)
    return spent


def agents_pss_mib(farm: Farm) -> float:
    """PSS of the running agents with their browsers, summed (shared pages count once each)."""
    return sum(
        tree_proportional_bytes(process.pid) / MIB
        for name, process in farm.processes.items()
        if kind_of(name) == "agent" and process.alive()
    )


@dataclass(frozen=True)
class Point:
    """One point of the curve: a farm's agents and places, the run, what it cost."""

    farm: str
    agents: int
    places: int
    clients: int
    load: float
    result: Measurement
    cpu_seconds: Mapping[str, float]
    agents_mib: float

    def row(self) -> str:
        """The point as a Markdown table row."""
        tasks = self.result.tasks
        cpu = " | ".join(
            f"{self.cpu_seconds[kind] / tasks * 1000:.0f}" if kind in self.cpu_seconds else "—"
            for kind in (*KINDS, "bench")
        )
        return (
            f"| {self.farm} | {self.agents} | {self.places} | {self.clients} | {self.load:.1f} "
            f"| {tasks} | {len(self.result.errors)} | {self.result.tasks_per_second:.2f} "
            f"| {_ms(self.result.percentile_ms(50))} | {_ms(self.result.percentile_ms(95))} "
            f"| {cpu} | {self.agents_mib:.0f} |"
        )


def _ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.0f}"


def table(points: list[Point]) -> str:
    """The points as one Markdown table."""
    cpu = " | ".join(f"{kind} CPU ms/task" for kind in (*KINDS, "bench"))
    return "\n".join(
        [
            "| farm | agents | places | clients | load | tasks | errors | tasks/s | p50 ms "
            f"| p95 ms | {cpu} | agents PSS MiB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * (len(KINDS) + 2),
            *(point.row() for point in points),
        ]
    )


class Tasks:
    """Small tasks through the farm's HTTP/JSON API, taking turns: content, then screenshot."""

    def __init__(self, http: httpx.AsyncClient, page_url: str) -> None:
        self.http = http
        common = {"url": page_url, "timeoutMs": TASK_TIMEOUT_MS, "cacheTtlSeconds": 0}
        self.specs: list[dict[str, Any]] = [
            {**common, "content": {"format": "CONTENT_FORMAT_HTML"}},
            {**common, "screenshot": {}, "viewport": VIEWPORT},
        ]
        self.sent = 0

    async def run_one(self) -> None:
        """One task, from the request to its final state; ShotFailed unless it succeeded."""
        spec = self.specs[self.sent % len(self.specs)]
        self.sent += 1
        try:
            answer = await self.http.post("/v1/tasks:run", json=spec)
        except httpx.HTTPError as error:
            raise ShotFailed(f"{type(error).__name__}: {error}") from error
        if answer.status_code != 200:
            raise ShotFailed(f"RunTask HTTP {answer.status_code}: {answer.text[:200]}")
        task = answer.json()
        if task.get("status") != "TASK_STATUS_SUCCEEDED":
            raise ShotFailed(f"task {task.get('status')}: {task.get('error')}")


async def run_point(
    farm: Farm, label: str, page_url: str, tasks: int, agents: int, places: int, clients: int
) -> Point:
    """Warms the farm's agents up, then runs `tasks` tasks from `clients` clients, measured."""
    load = os.getloadavg()[0]
    async with httpx.AsyncClient(
        base_url=farm.envoy_url,
        headers={"authorization": f"Bearer {farm.admin_key}"},
        timeout=httpx.Timeout(REQUEST_TIMEOUT_SECONDS),
        limits=httpx.Limits(max_connections=clients),
    ) as http:
        runner = Tasks(http, page_url)
        report(f"{label}, {agents} agent(s): warming up")
        # Two rounds of every place, so each agent has launched its browser and contexts.
        warm = await measure(runner.run_one, 2 * places, clients)
        if not warm.latencies_ms:
            raise SystemExit(f"warm-up failed: {warm.errors[0]}")
        report(f"{label}, {agents} agent(s): {tasks} tasks from {clients} clients")
        before = cpu_by_kind(farm)
        result = await measure(runner.run_one, tasks, clients)
        after = cpu_by_kind(farm)
    if result.errors:
        report(f"{label}, {agents} agent(s): first error: {result.errors[0]}")
    spent = {kind: after[kind] - before.get(kind, 0.0) for kind in after}
    return Point(label, agents, places, clients, load, result, spent, agents_pss_mib(farm))


def clients_for(args: argparse.Namespace, places: int) -> int:
    """Concurrent clients for a farm of `places`: as asked, or twice the places."""
    return int(args.clients or 2 * places)


def local_points(args: argparse.Namespace) -> list[Point]:
    """One farm on this machine per count of agents, started and stopped in turn."""
    points = []
    env = agent_env(args.agent_concurrency)
    with serve_page(PAGE_HTML, "/scale") as page_url:
        for agents in args.agents:
            places = agents * args.agent_concurrency
            with local_farm(agents, BENCH, report, service_env=env) as farm:
                point = run_point(
                    farm, "local", page_url, args.n, agents, places, clients_for(args, places)
                )
                points.append(asyncio.run(point))
    return points


def netns_points(args: argparse.Namespace) -> list[Point]:
    """The namespace farm with all its agent hosts, then one agent fewer at a time."""
    from scale_netns import BRIDGE_ADDRESS, netns_farm

    points = []
    # The page's address is the bridge's, made with the farm's hosts.
    with (
        netns_farm(agent_env(args.agent_concurrency), report) as (farm, stop_agent),
        serve_page(PAGE_HTML, "/scale", host=BRIDGE_ADDRESS) as page_url,
    ):
        agents = [name for name in farm.processes if kind_of(name) == "agent"]
        while agents:
            places = len(agents) * args.agent_concurrency
            point = run_point(
                farm, "netns", page_url, args.n, len(agents), places, clients_for(args, places)
            )
            points.append(asyncio.run(point))
            if len(agents) > 1:
                stop_agent(agents[-1])
            agents.pop()
    return points


def _counts(text: str) -> list[int]:
    parse = bounded(int, 1, MAX_AGENTS)
    return sorted({parse(part.strip()) for part in text.split(",") if part.strip()})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=bounded(int, 2, 1000), default=48, help="tasks per point")
    parser.add_argument(
        "--agents", type=_counts, default=[1, 2, 4], help="agent counts, e.g. 1,2,4"
    )
    parser.add_argument(
        "--agent-concurrency",
        type=bounded(int, 1, 16),
        default=2,
        help="FARM_AGENT_CONCURRENCY of every agent (default 2, as `farm up`)",
    )
    parser.add_argument(
        "--clients",
        type=bounded(int, 1, 64),
        default=0,
        help="concurrent clients (default: twice the farm's places)",
    )
    ways = parser.add_mutually_exclusive_group()
    ways.add_argument(
        "--netns", action="store_true", help="also the namespace farm with 3, 2, 1 agents (root)"
    )
    ways.add_argument("--netns-only", action="store_true", help="only the namespace farm (root)")
    args = parser.parse_args(argv)
    if not args.agents:
        parser.error("--agents: give at least one count")
    return args


def main(argv: list[str] | None = None) -> None:
    """Measures each point and prints the table with the machine's facts."""
    args = parse_args(argv)
    started_load = os.getloadavg()
    points = [] if args.netns_only else local_points(args)
    if args.netns or args.netns_only:
        points += netns_points(args)
    print(
        f"Machine: {os.cpu_count()} CPUs, load average at the start "
        f"{started_load[0]:.2f} / {started_load[1]:.2f} / {started_load[2]:.2f} (1/5/15 min); "
        f"FARM_AGENT_CONCURRENCY={args.agent_concurrency}; N={args.n} tasks per point "
        "(content and 1280x800 screenshots of a local page, in turn); the `load` column is "
        "the 1-min load at the start of each point.\n"
    )
    print(table(points))


if __name__ == "__main__":
    main()
