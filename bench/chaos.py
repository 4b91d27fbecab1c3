"""A bounded chaos soak: screenshot tasks while agents are SIGKILLed every few seconds.

Starts a farm of its own (NATS, SeaweedFS, the services, N agents, Envoy on free
ports, supervised as `farm up` supervises it) and runs the same batch on it twice:

- baseline: T screenshot tasks of a slow local page, nothing disturbed;
- chaos: T more while the bench SIGKILLs a random agent every K seconds (never the
  last one up, so the farm always has somewhere to run work); the supervisor
  restarts it and JetStream redelivers what it held after the ack wait.

The bench's supervisor counts an agent as healthy again after `--stable-after`
seconds up (`farm up`: 60 s), so that deliberate kills every few seconds do not
look like a crash loop and push the restart delay to its 30 s cap: the bench
measures how the farm recovers, not how long the supervisor backs off.

Tasks go in through Envoy's HTTP/JSON API (CreateTask, at most 16 in flight) and are
followed with ListTasks; each task's artifacts are counted with ListArtifacts. For
each run it prints submitted / succeeded / failed / lost / duplicated, the wall time
from the first submission to the last final state, and throughput:

- lost: submitted (CreateTask answered 200) but not listed, or not final by the
  deadline;
- duplicated: listed but never submitted, listed twice, or with more than one
  artifact.

    .venv/bin/python bench/chaos.py [--tasks 300] [--kill-every 5] [--agents 2]
"""

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.ports import MAX_AGENTS
from farm_cli.launcher.supervisor import Phase, RestartPolicy

from harness import bounded, local_farm, progress_reporter, serve_page

MAX_TASKS = 1000
FINAL = frozenset({"TASK_STATUS_SUCCEEDED", "TASK_STATUS_FAILED", "TASK_STATUS_CANCELLED"})
SUBMIT_CONCURRENCY = 16
# Short waits, as in tests/e2e/supervised/test_chaos.py: a killed agent's tasks come back
# in seconds.
FARM_ENV = {
    "FARM_AGENT_ACK_WAIT_SECONDS": "5",
    "FARM_AGENT_IN_PROGRESS_SECONDS": "1",
    "FARM_AGENT_CONCURRENCY": "3",
    "FARM_AGENT_RETRY_DELAY_SECONDS": "0.5",
    "FARM_AGENT_RETRY_BASE_SECONDS": "0.5",
    "FARM_AGENT_RETRY_MAX_SECONDS": "5",
    # The bench page is on 127.0.0.1: per-host politeness must not be what limits the runs.
    "FARM_AGENT_HOST_MAX_CONCURRENCY": "16",
    "FARM_AGENT_HOST_MAX_RATE": "100",
    "FARM_GRACE_SECONDS": "2",
}
VIEWPORT = {"width": 640, "height": 400}
progress = progress_reporter("chaos")
PAGE_HTML = b"""<!doctype html><html><head><meta charset="utf-8"><title>Chaos page</title>
</head><body style="font-family:sans-serif"><h1>browserfarm chaos bench</h1>
<p>A small page that answers after a delay, so tasks are in flight when agents die.</p>
</body></html>"""


@dataclass
class RunResult:
    """What became of one run's tasks."""

    name: str
    submitted: int = 0
    rejected: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    duplicated: int = 0
    wall_seconds: float = 0.0
    kills: int = 0
    restarts: int = 0
    attempts: Counter[int] = field(default_factory=Counter)

    @property
    def succeeded(self) -> int:
        """Tasks that ended SUCCEEDED."""
        return self.statuses["TASK_STATUS_SUCCEEDED"]

    @property
    def failed(self) -> int:
        """Tasks that ended FAILED or CANCELLED."""
        return sum(self.statuses.values()) - self.succeeded

    @property
    def throughput(self) -> float:
        """Succeeded tasks per second of wall time."""
        return self.succeeded / self.wall_seconds if self.wall_seconds else 0.0


class Killer:
    """SIGKILLs a random agent that is up (not the last one) every `every` seconds."""

    def __init__(self, farm: LocalFarm, agents: list[str], every: float, seed: int) -> None:
        self._farm = farm
        self._agents = agents
        self._every = every
        self._random = random.Random(seed)
        self.kills = 0

    async def run(self) -> None:
        """Kills until cancelled."""
        while True:
            await asyncio.sleep(self._every)
            up = [name for name in self._agents if self._farm.phase(name) is Phase.UP]
            if not up or (len(up) == 1 and len(self._agents) > 1):
                progress(f"{len(up)} agent(s) up; skipping this kill")
                continue
            victim = self._random.choice(up)
            self._farm.kill(victim, signal.SIGKILL)
            self.kills += 1
            progress(f"SIGKILL {victim} (kill {self.kills})")


@dataclass(frozen=True)
class Api:
    """The farm's HTTP/JSON API with the admin key."""

    http: httpx.AsyncClient

    async def create(self, spec: dict[str, Any]) -> str | None:
        """CreateTask; the id, or None if the farm refused it."""
        try:
            response = await self.http.post("/v1/tasks", json=spec)
        except httpx.HTTPError as error:
            progress(f"CreateTask failed: {type(error).__name__}: {error}")
            return None
        if response.status_code != 200:
            progress(f"CreateTask answered {response.status_code}: {response.text[:200]}")
            return None
        return str(response.json()["id"])

    async def tasks(self, label: str) -> list[dict[str, Any]]:
        """Every task carrying `label` (chaos=<label>), all pages."""
        found: list[dict[str, Any]] = []
        token = ""
        while True:
            params = {"label": f"chaos={label}", "pageSize": "1000", "pageToken": token}
            response = await self.http.get("/v1/tasks", params=params)
            response.raise_for_status()
            body = response.json()
            found += body.get("tasks", [])
            token = body.get("nextPageToken", "")
            if not token:
                return found

    async def artifact_count(self, task_id: str) -> int:
        """How many artifacts ListArtifacts shows for the task."""
        response = await self.http.get("/v1/artifacts", params={"taskId": task_id})
        response.raise_for_status()
        return len(response.json().get("artifacts", []))


async def submit_all(api: Api, spec: dict[str, Any], count: int) -> tuple[list[str], int]:
    """Creates `count` tasks of `spec`, SUBMIT_CONCURRENCY at a time; (ids, refused)."""
    slots = asyncio.Semaphore(SUBMIT_CONCURRENCY)

    async def one() -> str | None:
        async with slots:
            return await api.create(spec)

    answers = await asyncio.gather(*(one() for _ in range(count)))
    ids = [task_id for task_id in answers if task_id is not None]
    return ids, count - len(ids)


async def wait_final(api: Api, label: str, ids: list[str], deadline: float) -> list[dict[str, Any]]:
    """The batch's tasks once all submitted ones are final, or at the deadline."""
    wanted = set(ids)
    listed: list[dict[str, Any]] = []
    last_report = 0.0
    while time.monotonic() < deadline:
        try:
            listed = await api.tasks(label)
        except httpx.HTTPError as error:
            progress(f"ListTasks failed ({error}); trying again")
            await asyncio.sleep(1)
            continue
        final = {task["id"] for task in listed if task["status"] in FINAL}
        if wanted <= final:
            return listed
        if time.monotonic() - last_report > 10:
            last_report = time.monotonic()
            progress(f"{len(final & wanted)}/{len(wanted)} final")
        await asyncio.sleep(0.5)
    return listed


async def tally(api: Api, result: RunResult, ids: list[str], listed: list[dict[str, Any]]) -> None:
    """Fills `result` from the listing: statuses, lost, duplicated, attempts."""
    wanted = set(ids)
    seen = Counter(task["id"] for task in listed)
    by_id = {task["id"]: task for task in listed}
    result.duplicated = sum(1 for task_id in seen if task_id not in wanted)
    result.duplicated += sum(count - 1 for count in seen.values() if count > 1)
    for task_id in ids:
        task = by_id.get(task_id)
        if task is None or task["status"] not in FINAL:
            result.lost += 1
            continue
        code = task.get("error", {}).get("code", "")
        result.statuses[task["status"] + (f" ({code})" if code else "")] += 1
        result.attempts[int(task.get("attempts", 0))] += 1
    slots = asyncio.Semaphore(SUBMIT_CONCURRENCY)

    async def artifacts(task_id: str) -> int:
        async with slots:
            return await api.artifact_count(task_id)

    finished = [task_id for task_id in ids if task_id in by_id]
    counts = await asyncio.gather(*(artifacts(task_id) for task_id in finished))
    result.duplicated += sum(1 for count in counts if count > 1)


async def run_batch(
    farm: LocalFarm, api: Api, page_url: str, args: argparse.Namespace, *, chaos: bool
) -> RunResult:
    """One run of `args.tasks` tasks, with an agent killed every few seconds if `chaos`."""
    result = RunResult("chaos" if chaos else "baseline")
    label = secrets.token_hex(6)
    spec = {
        "url": page_url,
        "screenshot": {},
        "viewport": VIEWPORT,
        "maxAttempts": args.max_attempts,
        "labels": {"chaos": label},
        # Every task runs on an agent, never answered from the result cache.
        "cacheTtlSeconds": 0,
    }
    agents = [f"agent-{index}" for index in range(1, args.agents + 1)]
    restarts_before = sum(farm.supervisor.restarts(name) for name in agents)
    killer = Killer(farm, agents, args.kill_every, args.seed)
    killing = asyncio.create_task(killer.run()) if chaos else None
    progress(f"{result.name}: submitting {args.tasks} tasks")
    began = time.monotonic()
    try:
        ids, result.rejected = await submit_all(api, spec, args.tasks)
        listed = await wait_final(api, label, ids, began + args.deadline)
    finally:
        if killing is not None:
            killing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await killing
    result.wall_seconds = time.monotonic() - began
    result.submitted = len(ids)
    result.kills = killer.kills
    await tally(api, result, ids, listed)
    result.restarts = sum(farm.supervisor.restarts(name) for name in agents) - restarts_before
    return result


async def soak(farm: LocalFarm, page_url: str, args: argparse.Namespace) -> list[RunResult]:
    """The baseline run, then the chaos run, on the same farm."""
    headers = {"authorization": f"Bearer {farm.admin_key}"}
    async with httpx.AsyncClient(base_url=farm.envoy_url, headers=headers, timeout=30) as http:
        api = Api(http)
        baseline = await run_batch(farm, api, page_url, args, chaos=False)
        # Let the farm settle, so the chaos run starts with every agent up.
        await wait_agents_up(farm, args.agents)
        disturbed = await run_batch(farm, api, page_url, args, chaos=True)
        await wait_agents_up(farm, args.agents)
    return [baseline, disturbed]


async def wait_agents_up(farm: LocalFarm, agents: int, within: float = 120.0) -> None:
    """Waits until the supervisor has every agent up again."""
    deadline = time.monotonic() + within
    names = [f"agent-{index}" for index in range(1, agents + 1)]
    while any(farm.phase(name) is not Phase.UP for name in names):
        if time.monotonic() > deadline:
            raise SystemExit(f"agents not all up after {within:.0f} s")
        await asyncio.sleep(0.5)


def table(results: list[RunResult]) -> str:
    """The runs as a Markdown table."""
    lines = [
        "| run | submitted | succeeded | failed | lost | duplicated | agent kills | restarts "
        "| wall s | tasks/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        lines.append(
            f"| {result.name} | {result.submitted} | {result.succeeded} | {result.failed} "
            f"| {result.lost} | {result.duplicated} | {result.kills} | {result.restarts} "
            f"| {result.wall_seconds:.1f} | {result.throughput:.2f} |"
        )
    if len(results) == 2 and results[0].throughput:
        ratio = results[1].throughput / results[0].throughput
        lines.append(f"\nchaos / baseline throughput: {ratio:.2f}x")
    return "\n".join(lines)


def details(results: list[RunResult]) -> str:
    """Final states with error codes, attempts per task and refused submissions, per run."""
    lines = []
    for result in results:
        states = ", ".join(f"{name}: {count}" for name, count in sorted(result.statuses.items()))
        attempts = ", ".join(f"{n}: {count}" for n, count in sorted(result.attempts.items()))
        lines.append(
            f"{result.name}: {states or 'none final'}; attempts per task {{{attempts}}}; "
            f"CreateTask refused {result.rejected}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--tasks", type=bounded(int, 1, MAX_TASKS), default=300, help="tasks per run"
    )
    parser.add_argument(
        "--kill-every",
        type=bounded(float, 1, 600),
        default=5.0,
        help="seconds between agent kills in the chaos run (default 5)",
    )
    parser.add_argument(
        "--agents", type=bounded(int, 1, MAX_AGENTS), default=2, help="agents (default 2)"
    )
    parser.add_argument(
        "--page-ms", type=bounded(int, 0, 10_000), default=300, help="page delay (default 300)"
    )
    parser.add_argument(
        "--max-attempts", type=bounded(int, 1, 10), default=3, help="maxAttempts of each task"
    )
    parser.add_argument(
        "--deadline",
        type=bounded(float, 10, 3600),
        default=600.0,
        help="seconds a run may take before unfinished tasks count as lost (default 600)",
    )
    parser.add_argument(
        "--stable-after",
        type=bounded(float, 1, 600),
        default=10.0,
        help="seconds up after which a restarted agent's next crash waits 1 s again "
        "(default 10; farm up: 60)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the choice of victims")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Runs the baseline and the chaos run and prints the table."""
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    restarts = RestartPolicy(stable_after=args.stable_after)
    with (
        serve_page(PAGE_HTML, "/chaos", args.page_ms) as page_url,
        local_farm(
            args.agents, "chaos", progress, service_env=FARM_ENV, restart_policy=restarts
        ) as farm,
    ):
        farm.start_supervisor()
        results = asyncio.run(soak(farm, page_url, args))
    print(table(results))
    print()
    print(details(results))
    print()
    print(
        f"Machine: {os.cpu_count()} CPUs (1-min load {load_before:.2f} before the run); "
        f"farm: {args.agents} agents x concurrency {FARM_ENV['FARM_AGENT_CONCURRENCY']}, "
        f"ack wait {FARM_ENV['FARM_AGENT_ACK_WAIT_SECONDS']} s; {args.tasks} tasks per run, "
        f"{VIEWPORT['width']}x{VIEWPORT['height']} PNG of a page answering after "
        f"{args.page_ms} ms; maxAttempts {args.max_attempts}; an agent SIGKILLed every "
        f"{args.kill_every:g} s in the chaos run, never the last one up (seed {args.seed}); "
        f"an agent counts as healthy after {args.stable_after:g} s up."
    )


if __name__ == "__main__":
    main()
