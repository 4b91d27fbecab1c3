"""How many tasks a second the farm accepts through Envoy: single CreateTask calls vs batches.

Starts a farm of its own without agents, so the tasks stay queued: this measures
acceptance (a task stored in SQL and in JetStream before the answer), not running.
The admin key gets a high rate limit and its tenant a high queued quota, as a user
with raised limits has. Then, against the same farm:

- singles: `--clients` concurrent HTTP clients POST /v1/tasks, `--singles` tasks in all
  (with `--grpc`, also as many gRPC clients calling CreateTask through Envoy, which
  skips the JSON transcoder);
- batches: `--batch-clients` concurrent HTTP clients POST /v1/tasks:batchCreate with
  `--batch-size` specs each, `--batched` tasks in all.

For each it prints tasks/s accepted, the latency of a request (p50, p99) and the CPU
time per task of the scheduler, auth, Envoy, NATS and the bench's own clients (from
/proc, over the run). The issue's goals: 2,000/s singles, 10,000/s batches.

The HTTP clients share one aiohttp session of keep-alive connections on uvloop:
httpx spent about 6 ms of the same two cores per request, more than the farm, so the
rate measured was the bench's. `--http-client httpx` brings it back, for comparison.

    .venv/bin/python bench/submit.py [--clients 32] [--singles 3000] [--grpc]
        [--batch-clients 4] [--batch-size 100] [--batched 20000] [--group-max 1000]
        [--http-client aiohttp|httpx]

`--group-max 1` turns the group commit of single creates off, for a before/after;
`--singles 0` measures batches alone.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import httpx
import uvloop
from google.protobuf import json_format

from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_cli.launcher.farm import LocalFarm

from harness import bounded, local_farm, progress_reporter

BENCH = "submit"
MEASURED = ("scheduler", "auth", "envoy", "nats")
RAISED_RATE = 100_000
RAISED_QUEUED_QUOTA = 100_000_000
SPEC: dict[str, Any] = {"url": "https://example.com/", "screenshot": {}}
GRPC_CHANNELS = 4
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
            # Three decimals: a batched task costs each process a tenth of a millisecond or less.
            f"{self.cpu_seconds.get(name, 0.0) / self.tasks * 1000:.3f}"
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


Send = Callable[[], Awaitable[None]]
"""One call of a client: sends it, raises unless every task in it was accepted."""


def request_body(batch_size: int) -> tuple[str, dict[str, Any]]:
    """The HTTP path and JSON body of a call of `batch_size` tasks (1: CreateTask)."""
    if batch_size == 1:
        return "/v1/tasks", SPEC
    return "/v1/tasks:batchCreate", {"requests": [SPEC] * batch_size}


def check_answer(path: str, batch_size: int, status: int, answer: Callable[[], Any]) -> None:
    """Raises unless the call answered 200 and, for a batch, refused no item."""
    if status != 200:
        raise RuntimeError(f"{path} answered {status}: {answer()}")
    if batch_size > 1 and (errors := answer().get("errors")):
        raise RuntimeError(f"{path} refused items: {errors[:3]}")


@contextlib.asynccontextmanager
async def aiohttp_senders(farm: LocalFarm, batch_size: int) -> AsyncIterator[Callable[[], Send]]:
    """Makes senders that share one aiohttp session of keep-alive connections."""
    path, body = request_body(batch_size)
    data = json.dumps(body).encode()
    headers = {"authorization": f"Bearer {farm.admin_key}", "content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(
        farm.envoy_url, connector=connector, headers=headers, timeout=aiohttp.ClientTimeout(60)
    ) as http:

        async def send() -> None:
            async with http.post(path, data=data) as answer:
                payload = await answer.read()
            check_answer(path, batch_size, answer.status, lambda: json.loads(payload))

        yield lambda: send


@contextlib.asynccontextmanager
async def httpx_senders(farm: LocalFarm, batch_size: int) -> AsyncIterator[Callable[[], Send]]:
    """Makes senders that share one httpx client (the bench's client before aiohttp)."""
    path, body = request_body(batch_size)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    headers = {"authorization": f"Bearer {farm.admin_key}"}
    async with httpx.AsyncClient(
        base_url=farm.envoy_url, headers=headers, limits=limits, timeout=60
    ) as http:

        async def send() -> None:
            answer = await http.post(path, json=body)
            check_answer(path, batch_size, answer.status_code, answer.json)

        yield lambda: send


@contextlib.asynccontextmanager
async def grpc_senders(farm: LocalFarm, batch_size: int) -> AsyncIterator[Callable[[], Send]]:
    """Makes senders calling CreateTask over gRPC through Envoy, on GRPC_CHANNELS channels."""
    if batch_size != 1:
        raise ValueError("the gRPC mode sends single CreateTask calls")
    request = tasks_pb2.CreateTaskRequest(spec=json_format.ParseDict(SPEC, tasks_pb2.TaskSpec()))
    metadata = (("authorization", f"Bearer {farm.admin_key}"),)
    target = farm.envoy_url.removeprefix("http://")
    channels = [grpc.aio.insecure_channel(target) for _ in range(GRPC_CHANNELS)]
    stubs = [tasks_pb2_grpc.TaskServiceStub(channel) for channel in channels]
    made = itertools.count()

    def sender() -> Send:
        stub = stubs[next(made) % len(stubs)]

        async def send() -> None:
            await stub.CreateTask(request, metadata=metadata, timeout=60)

        return send

    try:
        yield sender
    finally:
        for channel in channels:
            await channel.close()


SENDERS = {"aiohttp": aiohttp_senders, "httpx": httpx_senders, "grpc": grpc_senders}


async def submit(
    farm: LocalFarm, name: str, way: str, clients: int, requests: int, batch_size: int
) -> Run:
    """`clients` concurrent clients of `way` send `requests` calls of `batch_size` tasks."""
    latencies: list[float] = []
    remaining = iter(range(requests))
    async with SENDERS[way](farm, batch_size) as sender:

        async def client(send: Send) -> None:
            for _ in remaining:
                sent = time.perf_counter()
                await send()
                latencies.append(time.perf_counter() - sent)

        sends = [sender() for _ in range(clients)]
        # A short warm-up: connections opened, the key looked up and cached.
        await asyncio.gather(*(send() for send in sends))
        before, start = farm_cpu(farm), time.perf_counter()
        await asyncio.gather(*(client(send) for send in sends))
        seconds, after = time.perf_counter() - start, farm_cpu(farm)
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    return Run(name, requests * batch_size, seconds, latencies, spent)


def main() -> None:
    """Starts the farm, raises the limits, runs singles then batches, prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=bounded(int, 1, 256), default=32)
    parser.add_argument(
        "--singles", type=bounded(int, 0, 1_000_000), default=3000, help="0 runs no singles"
    )
    parser.add_argument("--batch-clients", type=bounded(int, 1, 64), default=4)
    parser.add_argument("--batch-size", type=bounded(int, 2, 1000), default=100)
    parser.add_argument("--batched", type=bounded(int, 2, 1_000_000), default=20000)
    parser.add_argument(
        "--group-max",
        type=bounded(int, 1, 1000),
        default=1000,
        help="the scheduler's FARM_SCHEDULER_CREATE_GROUP_MAX; 1 writes each create alone",
    )
    parser.add_argument(
        "--http-client",
        choices=("aiohttp", "httpx"),
        default="aiohttp",
        help="the bench's HTTP client: aiohttp's keep-alive connections, or httpx (costlier)",
    )
    parser.add_argument(
        "--grpc", action="store_true", help="also send the singles as gRPC CreateTask calls"
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    group_env = {"FARM_SCHEDULER_CREATE_GROUP_MAX": str(args.group_max)}
    requests = max(args.batched // args.batch_size, 1)
    rows: list[Run] = []
    with local_farm(0, BENCH, report, service_env=group_env) as farm:
        with httpx.Client(
            base_url=farm.envoy_url,
            headers={"authorization": f"Bearer {farm.admin_key}"},
            timeout=30,
        ) as http:
            raise_limits(http)
        runs: list[tuple[str, str, int, int, int]] = []
        if args.singles:
            runs.append(("CreateTask", args.http_client, args.clients, args.singles, 1))
        if args.grpc and args.singles:
            runs.append(("CreateTask gRPC", "grpc", args.clients, args.singles, 1))
        runs.append(
            (
                f"CreateTasks x{args.batch_size}",
                args.http_client,
                args.batch_clients,
                requests,
                args.batch_size,
            )
        )
        for name, way, clients, calls, batch_size in runs:
            report(f"{name}: {calls} calls of {batch_size} task(s) from {clients} {way} clients")
            rows.append(uvloop.run(submit(farm, name, way, clients, calls, batch_size)))
    print(
        f"load average at the start: {load:.2f} on {os.cpu_count()} cores; "
        f"FARM_SCHEDULER_CREATE_GROUP_MAX={args.group_max}; HTTP client {args.http_client}\n"
    )
    cpu_columns = " | ".join(f"{name} CPU ms/task" for name in (*MEASURED, "clients"))
    print(f"| way | tasks | tasks/s | p50 ms | p99 ms | {cpu_columns} |")
    print("|---|---:|---:|---:|---:|" + "---:|" * (len(MEASURED) + 1))
    for row in rows:
        print(row.row())


if __name__ == "__main__":
    main()
