"""How many tasks a second the farm accepts through Envoy: single CreateTask calls vs batches.

Starts a farm of its own without agents, so the tasks stay queued: this measures
acceptance (a task stored in SQL and in JetStream before the answer), not running.
The admin key gets a high rate limit and its tenant a high queued quota, as a user
with raised limits has. Then, against the same farm:

- singles: `--clients` concurrent HTTP clients POST /v1/tasks, `--singles` tasks in all;
- batches: `--batch-clients` concurrent HTTP clients POST /v1/tasks:batchCreate with
  `--batch-size` specs each, `--batched` tasks in all.

For both it prints tasks/s accepted, the latency of a request (p50, p99) and the CPU
time per task of the scheduler, auth, Envoy, NATS and the bench's own clients (from
/proc, over the run). The issue's goals: 2,000/s singles, 10,000/s batches.

    .venv/bin/python bench/submit.py [--clients 32] [--singles 3000]
        [--batch-clients 4] [--batch-size 100] [--batched 20000] [--group-max 1000]

`--group-max 1` turns the group commit of single creates off, for a before/after.
"""

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from farm_cli.launcher.farm import LocalFarm

from harness import bounded, local_farm, progress_reporter

BENCH = "submit"
MEASURED = ("scheduler", "auth", "envoy", "nats")
RAISED_RATE = 100_000
RAISED_QUEUED_QUOTA = 100_000_000
SPEC: dict[str, Any] = {"url": "https://example.com/", "screenshot": {}}
report = progress_reporter(BENCH)


@dataclass(frozen=True)
class Run:
    """One way of submitting, measured: tasks accepted, wall time, latencies, CPU seconds."""

    name: str
    tasks: int
    seconds: float
    latencies: list[float]
    cpu_seconds: Mapping[str, float]

    def row(self) -> str:
        """The run as a Markdown table row."""
        ordered = sorted(self.latencies)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        cpu = " | ".join(
            f"{self.cpu_seconds.get(name, 0.0) / self.tasks * 1000:.2f}"
            for name in (*MEASURED, "clients")
        )
        return (
            f"| {self.name} | {self.tasks} | {self.tasks / self.seconds:,.0f} "
            f"| {statistics.median(ordered) * 1000:.1f} | {p99 * 1000:.1f} | {cpu} |"
        )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process `pid` so far (0.0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields 14 and 15 of stat (utime, stime), counted after the command's ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def farm_cpu(farm: LocalFarm) -> dict[str, float]:
    """CPU seconds so far of the measured farm processes, and of this bench's process."""
    spent = {
        name: cpu_seconds(process.pid)
        for name, process in farm.processes.items()
        if name in MEASURED
    }
    spent["clients"] = time.process_time()
    return spent


def raise_limits(http: httpx.Client) -> None:
    """Gives the admin key a high rate limit and its tenant a high queued quota."""
    who = http.get("/v1/whoami")
    who.raise_for_status()
    identity = who.json()
    answers = [
        http.patch(
            f"/v1/apiKeys/{identity['keyId']}",
            json={"rateLimitPerSecond": RAISED_RATE, "rateLimitBurst": RAISED_RATE},
        ),
        http.patch(
            f"/v1/tenants/{identity['tenant']}/limits",
            json={"maxQueuedTasks": str(RAISED_QUEUED_QUOTA)},
        ),
    ]
    for answer in answers:
        answer.raise_for_status()
    # The auth service trusts a looked-up key for up to a second.
    time.sleep(1.5)


async def submit(farm: LocalFarm, name: str, clients: int, requests: int, batch_size: int) -> Run:
    """`clients` concurrent clients send `requests` calls of `batch_size` tasks (1: CreateTask)."""
    path, body = (
        ("/v1/tasks", SPEC)
        if batch_size == 1
        else ("/v1/tasks:batchCreate", {"requests": [SPEC] * batch_size})
    )
    latencies: list[float] = []
    remaining = iter(range(requests))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"authorization": f"Bearer {farm.admin_key}"}
    async with httpx.AsyncClient(
        base_url=farm.envoy_url, headers=headers, limits=limits, timeout=60
    ) as http:

        async def client() -> None:
            for _ in remaining:
                sent = time.perf_counter()
                answer = await http.post(path, json=body)
                latencies.append(time.perf_counter() - sent)
                if answer.status_code != 200:
                    raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text}")
                if batch_size > 1 and answer.json().get("errors"):
                    raise RuntimeError(f"{path} refused items: {answer.json()['errors'][:3]}")

        # A short warm-up: connections opened, the key looked up and cached.
        await http.post(path, json=body)
        before, start = farm_cpu(farm), time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        seconds, after = time.perf_counter() - start, farm_cpu(farm)
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    return Run(name, requests * batch_size, seconds, latencies, spent)


def main() -> None:
    """Starts the farm, raises the limits, runs singles then batches, prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=bounded(int, 1, 256), default=32)
    parser.add_argument("--singles", type=bounded(int, 1, 1_000_000), default=3000)
    parser.add_argument("--batch-clients", type=bounded(int, 1, 64), default=4)
    parser.add_argument("--batch-size", type=bounded(int, 2, 1000), default=100)
    parser.add_argument("--batched", type=bounded(int, 2, 1_000_000), default=20000)
    parser.add_argument(
        "--group-max",
        type=bounded(int, 1, 1000),
        default=1000,
        help="the scheduler's FARM_SCHEDULER_CREATE_GROUP_MAX; 1 writes each create alone",
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    group_env = {"FARM_SCHEDULER_CREATE_GROUP_MAX": str(args.group_max)}
    with local_farm(0, BENCH, report, service_env=group_env) as farm:
        with httpx.Client(
            base_url=farm.envoy_url,
            headers={"authorization": f"Bearer {farm.admin_key}"},
            timeout=30,
        ) as http:
            raise_limits(http)
        report(f"singles: {args.singles} CreateTask calls from {args.clients} clients")
        singles = asyncio.run(submit(farm, "CreateTask", args.clients, args.singles, 1))
        requests = max(args.batched // args.batch_size, 1)
        report(
            f"batches: {requests} CreateTasks calls of {args.batch_size} "
            f"from {args.batch_clients} clients"
        )
        batches = asyncio.run(
            submit(
                farm,
                f"CreateTasks x{args.batch_size}",
                args.batch_clients,
                requests,
                args.batch_size,
            )
        )
    print(
        f"load average at the start: {load:.2f} on {os.cpu_count()} cores; "
        f"FARM_SCHEDULER_CREATE_GROUP_MAX={args.group_max}\n"
    )
    cpu_columns = " | ".join(f"{name} CPU ms/task" for name in (*MEASURED, "clients"))
    print(f"| way | tasks | tasks/s | p50 ms | p99 ms | {cpu_columns} |")
    print("|---|---:|---:|---:|---:|" + "---:|" * (len(MEASURED) + 1))
    print(singles.row())
    print(batches.row())


if __name__ == "__main__":
    main()
