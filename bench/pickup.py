"""How fast an idle agent picks up a task: from publish to the agent's RUNNING event.

Runs the agent's real work intake (farm_agent.work.intake.WorkIntake, concurrency 2) with
a runner that only sleeps, against an embedded nats-server, fed by two clients that
each publish a task and wait for it to finish before publishing the next (as two
RunTask callers do). The baseline, in the same run, is a bare nats-py pull loop on
a work-queue stream with the same traffic. No browser is involved, so the figures
are the queue's own overhead.

With `--farm N` it also starts a farm of its own with one idle agent and runs N small
screenshots one at a time through Envoy (RunTask, cacheTtlSeconds 0), reading each
task's own timestamps: accepted (createTime, the scheduler's) to running (startTime,
the agent's RUNNING event), the whole path scheduler → NATS → agent.

    .venv/bin/python bench/pickup.py [--tasks 40] [--work-ms 300] [--farm 30]
"""

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import nats
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StreamConfig

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import Capture, CapturedArtifact
from farm_agent.settings import AgentSettings
from farm_agent.work.intake import WorkIntake
from farm_agent.work.uploader import ArtifactOwner
from farm_cli.launcher import infra
from farm_cli.launcher.processes import ManagedProcess, free_ports, wait_until
from farm_core.nats_access import NatsAccess
from farm_core.queue import TASK_EVENT_SUBJECTS, Priority, connect, task_subject

from harness import local_farm, progress_reporter, serve_page

CLIENTS = 2
Publish = Callable[[str], Awaitable[None]]


class SleepingSpecRunner:
    """A SpecRunner that stands in for the browser: each task takes `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def run(
        self, spec: tasks_pb2.TaskSpec, profile_state: bytes = b"", tenant: str = ""
    ) -> Capture:
        await asyncio.sleep(self.seconds)
        return Capture(result=tasks_pb2.TaskResult(title="bench"))


class NoUploads:
    """The sleeping runner produces no artifacts, so nothing is ever uploaded."""

    async def upload(
        self, owner: ArtifactOwner, artifact: CapturedArtifact
    ) -> tasks_pb2.ArtifactRef:
        raise AssertionError("nothing to upload")

    async def close(self) -> None:
        """Nothing to release."""


async def drive(
    publish: Publish, started: dict[str, float], finished: dict[str, asyncio.Event], tasks: int
) -> list[float]:
    """Two clients publish tasks one after another; returns publish→start latencies."""
    latencies: list[float] = []

    async def client(number: int) -> None:
        for index in range(tasks // CLIENTS):
            task_id = f"c{number}t{index}"
            finished[task_id] = asyncio.Event()
            sent = time.monotonic()
            await publish(task_id)
            await asyncio.wait_for(finished[task_id].wait(), timeout=30)
            latencies.append(started[task_id] - sent)

    await asyncio.gather(*(client(number) for number in range(CLIENTS)))
    return latencies


async def agent_intake(nats_url: str, home: Path, tasks: int, work: float) -> list[float]:
    """The agent's intake: publish WorkItems, time until its RUNNING events."""
    settings = AgentSettings.model_validate(
        {
            "FARM_HOME": home,
            "NATS_URL": nats_url,
            "concurrency": CLIENTS,
        }
    )
    intake = WorkIntake(settings, SleepingSpecRunner(work), NoUploads())
    await intake.start()
    client = await connect(NatsAccess(nats_url), "bench-pickup")
    js = client.jetstream()
    started: dict[str, float] = {}
    finished: dict[str, asyncio.Event] = {}

    async def on_event(message: Msg) -> None:
        event = queue_pb2.AgentEvent.FromString(message.data)
        if event.status == tasks_pb2.TASK_STATUS_RUNNING:
            started.setdefault(event.task_id, time.monotonic())
        elif event.status == tasks_pb2.TASK_STATUS_SUCCEEDED:
            finished[event.task_id].set()

    await client.subscribe(TASK_EVENT_SUBJECTS, cb=on_event)

    async def publish(task_id: str) -> None:
        item = queue_pb2.WorkItem(
            task_id=task_id,
            tenant="bench",
            spec=tasks_pb2.TaskSpec(url="http://bench.test", content=tasks_pb2.ContentOptions()),
        )
        await js.publish(
            task_subject("", Priority.NORMAL),
            item.SerializeToString(),
            headers={"Nats-Msg-Id": task_id},
        )

    try:
        return await drive(publish, started, finished, tasks)
    finally:
        await intake.close()
        await client.close()


async def bare_pull_loop(nats_url: str, tasks: int, work: float) -> list[float]:
    """The baseline: a plain nats-py fetch loop with the same concurrency and traffic."""
    client = await nats.connect(nats_url)
    js = client.jetstream()
    await js.add_stream(
        StreamConfig(name="BASELINE", subjects=["base.>"], retention=RetentionPolicy.WORK_QUEUE)
    )
    await js.add_consumer(
        "BASELINE",
        ConsumerConfig(durable_name="base", filter_subject="base.x", ack_policy=AckPolicy.EXPLICIT),
    )
    subscription = await js.pull_subscribe_bind(durable="base", stream="BASELINE")
    started: dict[str, float] = {}
    finished: dict[str, asyncio.Event] = {}
    slots = asyncio.Semaphore(CLIENTS)
    stopping = asyncio.Event()
    working: set[asyncio.Task[None]] = set()

    async def work_on(message: Msg) -> None:
        await asyncio.sleep(work)
        await message.ack()
        finished[message.data.decode()].set()
        slots.release()

    async def fetch_loop() -> None:
        while not stopping.is_set():
            await slots.acquire()
            while not stopping.is_set():
                try:
                    [message] = await subscription.fetch(1, timeout=0.5)
                except TimeoutError:
                    continue
                started[message.data.decode()] = time.monotonic()
                task = asyncio.create_task(work_on(message))
                working.add(task)
                task.add_done_callback(working.discard)
                break

    async def publish(task_id: str) -> None:
        await js.publish("base.x", task_id.encode())

    fetching = asyncio.create_task(fetch_loop())
    try:
        return await drive(publish, started, finished, tasks)
    finally:
        stopping.set()
        fetching.cancel()
        await asyncio.gather(fetching, *working, return_exceptions=True)
        await client.close()


def describe(name: str, latencies: list[float]) -> str:
    """One Markdown table row: p50, p95 and max in ms."""
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"| {name} | {len(ordered)} | {statistics.median(ordered) * 1000:.1f} "
        f"| {p95 * 1000:.1f} | {ordered[-1] * 1000:.1f} |"
    )


async def measure(tasks: int, work: float) -> None:
    """Starts a nats-server, runs both ways, prints the table."""
    with tempfile.TemporaryDirectory(prefix="farm-pickup-") as scratch:
        home = Path(scratch)
        ports = infra.NatsPorts(*free_ports(2))
        server = ManagedProcess(infra.nats_spec(ports, home / "nats"), home, home)
        server.start()
        try:
            wait_until(lambda: infra.nats_ready(ports), timeout=30, what="nats-server")
            url = f"nats://127.0.0.1:{ports.client}"
            baseline = await bare_pull_loop(url, tasks, work)
            agent = await agent_intake(url, home, tasks, work)
        finally:
            server.stop(timeout=5)
    print("| way | tasks | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|---:|")
    print(describe("bare nats-py pull loop (baseline)", baseline))
    print(describe("agent intake", agent))
    print(
        f"\n{CLIENTS} clients, each publishing its next task when the last one ended; "
        f"tasks take {work * 1000:.0f} ms; publish → start latency."
    )


PAGE_HTML = b"<!doctype html><title>pickup</title><p>pickup bench</p>"


def seconds_of(json_timestamp: str) -> float:
    """A Timestamp in its JSON form (RFC 3339), as Unix seconds."""
    stamp = Timestamp()
    stamp.FromJsonString(json_timestamp)
    return stamp.seconds + stamp.nanos / 1e9


def accepted_to_running(tasks: int) -> list[float]:
    """Seconds from each task's createTime to its startTime, on a farm with one idle agent."""
    report = progress_reporter("pickup")
    with serve_page(PAGE_HTML, "/pickup") as page_url, local_farm(1, "pickup", report) as farm:
        spec = {"url": page_url, "screenshot": {}, "cacheTtlSeconds": 0}
        headers = {"authorization": f"Bearer {farm.admin_key}"}
        latencies = []
        with httpx.Client(base_url=farm.envoy_url, headers=headers, timeout=60) as http:
            for number in range(tasks + 2):
                answer = http.post("/v1/tasks:run", json=spec)
                answer.raise_for_status()
                task = answer.json()
                if number >= 2:  # the first two warm the agent's browser
                    latencies.append(seconds_of(task["startTime"]) - seconds_of(task["createTime"]))
    return latencies


def main() -> None:
    """Parses the arguments and runs the measurement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=40, help="tasks per way (2 to 1000)")
    parser.add_argument("--work-ms", type=int, default=300, help="how long each task takes")
    parser.add_argument(
        "--farm", type=int, default=0, help="also N tasks through a farm (accepted → running)"
    )
    arguments = parser.parse_args()
    if not 2 <= arguments.tasks <= 1000 or not 0 <= arguments.work_ms <= 10_000:
        parser.error("--tasks must be 2 to 1000 and --work-ms 0 to 10000")
    load = os.getloadavg()[0]
    asyncio.run(measure(arguments.tasks, arguments.work_ms / 1000))
    if arguments.farm > 0:
        farm = accepted_to_running(arguments.farm)
        print("\n| way | tasks | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|---:|")
        print(describe("farm: accepted → running (idle agent)", farm))
    print(f"\nload average (1 min) at the start: {load:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
