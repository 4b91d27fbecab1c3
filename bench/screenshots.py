"""Screenshot throughput and latency: the farm through Envoy against plain Playwright.

For each concurrency C it takes N screenshots (1280x800 PNG) of a small local page two
ways, in the same run, on the same Chromium:

- farm: `POST /v1/tasks:run` over HTTP/JSON through Envoy, then
  `GET /v1/artifacts/{id}:content`, so a task's latency is what a user waits for the PNG;
- Playwright: one browser launched with the agents' own task-browser executable and
  flags (the headless shell where installed, read from farm_agent's settings), a new
  context per task, `page.goto` + `page.screenshot()`.

Both run C concurrent workers over N tasks after a few unmeasured warm-up tasks, and
the bench prints a Markdown table (tasks/s, p50/p95 latency, errors, farm/baseline
ratios) plus the machine's facts. Unless `--farm-url` and `--key` are given it starts
its own farm (NATS, SeaweedFS, services, agents, Envoy) on free ports and stops it.

    .venv/bin/python bench/screenshots.py --n 60 --concurrency 1,2,4 --agents 2
    make bench ARGS="--n 60 --concurrency 1,2,4"
"""

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from browsers import agent_process_ids, browsers_ran, task_browser
from playwright.async_api import Browser, ViewportSize, async_playwright
from playwright.async_api import Error as PlaywrightError

from farm_agent.settings import AgentSettings
from farm_cli.launcher.ports import MAX_AGENTS

from harness import bounded, local_farm, progress_reporter, serve_page

MAX_TASKS = 1000
MAX_CONCURRENCY = 32
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
# Each task must finish within this (navigation + capture, plus queueing on the farm).
TASK_TIMEOUT_MS = 30_000
# The HTTP client waits a little longer than the task's own timeout for RunTask's answer.
REQUEST_TIMEOUT_SECONDS = TASK_TIMEOUT_MS / 1000 + 15
# Warm-up tasks per way: this many rounds at the highest concurrency, so every browser
# either way will use is launched before measuring.
WARMUP_ROUNDS = 2
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

progress = progress_reporter("bench")
PAGE_HTML = b"""<!doctype html><html><head><meta charset="utf-8"><title>Bench page</title>
<style>body{font-family:sans-serif;margin:40px} .card{display:inline-block;width:220px;
height:120px;margin:8px;border-radius:8px;background:linear-gradient(#4a7,#27a)}</style>
</head><body><h1>browserfarm bench</h1><p>A small fixed page: text, CSS and boxes.</p>
<div class="card"></div><div class="card"></div><div class="card"></div>
<ul><li>apple</li><li>pear</li><li>plum</li></ul></body></html>"""


class ShotFailed(RuntimeError):
    """One screenshot did not come back as a PNG."""


@dataclass
class Measurement:
    """N tasks at concurrency C one way: each success's latency, failures, wall time."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def tasks(self) -> int:
        """Tasks attempted."""
        return len(self.latencies_ms) + len(self.errors)

    @property
    def tasks_per_second(self) -> float:
        """Throughput: tasks attempted over wall time."""
        return self.tasks / self.wall_seconds if self.wall_seconds else 0.0

    def percentile_ms(self, percent: int) -> float:
        """The `percent`th latency percentile of successful tasks; NaN if none succeeded."""
        if not self.latencies_ms:
            return float("nan")
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        cuts = statistics.quantiles(self.latencies_ms, n=100, method="inclusive")
        return cuts[percent - 1]


Shot = Callable[[], Awaitable[None]]


async def measure(shoot: Shot, tasks: int, concurrency: int) -> Measurement:
    """Runs `tasks` shots with `concurrency` workers; times each and the whole."""
    result = Measurement()
    remaining = iter(range(tasks))

    async def worker() -> None:
        for _ in remaining:
            began = time.perf_counter()
            try:
                await shoot()
            except ShotFailed as error:
                result.errors.append(str(error))
                continue
            result.latencies_ms.append((time.perf_counter() - began) * 1000)

    began = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, tasks)):
            group.create_task(worker())
    result.wall_seconds = time.perf_counter() - began
    return result


def require_png(data: bytes, source: str) -> None:
    """Raises ShotFailed unless `data` is a PNG."""
    if not data.startswith(PNG_SIGNATURE):
        raise ShotFailed(f"{source}: not a PNG ({len(data)} bytes)")


@dataclass(frozen=True)
class FarmShooter:
    """Screenshots through the farm's HTTP/JSON API: RunTask, then the artifact's bytes."""

    http: httpx.AsyncClient
    page_url: str
    # More TaskSpec fields in JSON, e.g. {"isolation": "ISOLATION_WARM"}.
    extra: Mapping[str, Any] = field(default_factory=dict)

    async def shoot(self) -> None:
        """One screenshot, from request to the PNG's last byte."""
        spec = {
            "url": self.page_url,
            "screenshot": {},
            "viewport": VIEWPORT,
            "timeoutMs": TASK_TIMEOUT_MS,
            # Every shot is taken by the browser, never answered from the result cache.
            "cacheTtlSeconds": 0,
            **self.extra,
        }
        try:
            task = self._ok_json(await self.http.post("/v1/tasks:run", json=spec))
            artifact_id = self._screenshot_id(task)
            response = await self.http.get(f"/v1/artifacts/{artifact_id}:content")
        except httpx.HTTPError as error:
            raise ShotFailed(f"farm: {type(error).__name__}: {error}") from error
        if response.status_code != 200:
            raise ShotFailed(f"farm: artifact content HTTP {response.status_code}")
        require_png(response.content, "farm")

    @staticmethod
    def _ok_json(response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise ShotFailed(f"farm: RunTask HTTP {response.status_code}: {response.text[:200]}")
        return dict(response.json())

    @staticmethod
    def _screenshot_id(task: dict[str, Any]) -> str:
        if task.get("status") != "TASK_STATUS_SUCCEEDED":
            raise ShotFailed(f"farm: task {task.get('status')}: {task.get('error')}")
        artifacts = task.get("result", {}).get("artifacts", [])
        if not artifacts:
            raise ShotFailed("farm: the finished task has no artifact")
        return str(artifacts[0]["id"])


@dataclass(frozen=True)
class BrowserShooter:
    """Screenshots with plain Playwright: one browser, a fresh context per task."""

    browser: Browser
    page_url: str

    async def shoot(self) -> None:
        """One screenshot in a new context, closed afterwards."""
        try:
            async with asyncio.timeout(TASK_TIMEOUT_MS / 1000):
                context = await self.browser.new_context(viewport=VIEWPORT)
                try:
                    page = await context.new_page()
                    await page.goto(self.page_url, wait_until="load", timeout=TASK_TIMEOUT_MS)
                    image = await page.screenshot(timeout=TASK_TIMEOUT_MS)
                finally:
                    await context.close()
        except (PlaywrightError, TimeoutError) as error:
            raise ShotFailed(f"playwright: {type(error).__name__}: {error}") from error
        require_png(image, "playwright")


@dataclass(frozen=True)
class Row:
    """One concurrency's measurements both ways."""

    concurrency: int
    farm: Measurement
    baseline: Measurement


async def warm_up(shoot: Shot, concurrency: int) -> None:
    """Unmeasured tasks so browsers are launched; fails the bench if none succeeds."""
    result = await measure(shoot, WARMUP_ROUNDS * concurrency, concurrency)
    if not result.latencies_ms:
        raise SystemExit(f"warm-up failed: {result.errors[0]}")


@contextlib.asynccontextmanager
async def farm_client_and_browser(
    farm_url: str, key: str, concurrency: int
) -> AsyncIterator[tuple[httpx.AsyncClient, Browser]]:
    """An HTTP client of the farm with the key, and a plain Chromium with the farm's flags."""
    http = httpx.AsyncClient(
        base_url=farm_url,
        headers={"authorization": f"Bearer {key}"},
        timeout=httpx.Timeout(REQUEST_TIMEOUT_SECONDS),
        limits=httpx.Limits(max_connections=concurrency),
    )
    executable, arguments = task_browser()
    async with http, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=arguments
        )
        try:
            yield http, browser
        finally:
            await browser.close()


async def compare(
    farm_url: str, key: str, page_url: str, tasks: int, levels: list[int], agent_pids: list[int]
) -> tuple[list[Row], str]:
    """Each level measured through the farm, then with Playwright; the rows and the browsers."""
    async with farm_client_and_browser(farm_url, key, max(levels)) as (http, browser):
        farm = FarmShooter(http, page_url)
        baseline = BrowserShooter(browser, page_url)
        progress("warming up")
        await warm_up(farm.shoot, max(levels))
        await warm_up(baseline.shoot, max(levels))
        rows = []
        for level in levels:
            progress(f"measuring {tasks} tasks at concurrency {level}")
            farm_result = await measure(farm.shoot, tasks, level)
            baseline_result = await measure(baseline.shoot, tasks, level)
            rows.append(Row(level, farm_result, baseline_result))
        return rows, f"{browser.version} ({browsers_ran(agent_pids)})"


def _ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.0f}"


def _ratio(farm: float, baseline: float) -> str:
    if not baseline or math.isnan(farm) or math.isnan(baseline):
        return "—"
    return f"{farm / baseline:.2f}x"


def _row(level: int, way: str, result: Measurement) -> str:
    return (
        f"| {level} | {way} | {result.tasks_per_second:.2f} | {_ms(result.percentile_ms(50))} "
        f"| {_ms(result.percentile_ms(95))} | {len(result.errors)} |"
    )


def table(rows: list[Row]) -> str:
    """The results as a Markdown table, with a farm/baseline ratio row per concurrency."""
    lines = [
        "| C | way | tasks/s | p50 ms | p95 ms | errors |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        throughput = _ratio(row.farm.tasks_per_second, row.baseline.tasks_per_second)
        p50 = _ratio(row.farm.percentile_ms(50), row.baseline.percentile_ms(50))
        lines += [
            _row(row.concurrency, "farm", row.farm),
            _row(row.concurrency, "Playwright", row.baseline),
            f"| {row.concurrency} | farm / Playwright | {throughput} | {p50} | — | — |",
        ]
    return "\n".join(lines)


def machine_facts(chromium_version: str, farm_description: str, tasks: int, load: float) -> str:
    """One line: CPUs, load before the run, Chromium, the farm's agents, the bench's settings."""
    return (
        f"Machine: {os.cpu_count()} CPUs (1-min load {load:.2f} before the run), "
        f"Chromium {chromium_version}; farm: {farm_description}; "
        f"N={tasks} tasks per cell, {VIEWPORT['width']}x{VIEWPORT['height']} PNG of a "
        f"{len(PAGE_HTML)}-byte local page; warm-up {WARMUP_ROUNDS} rounds per way."
    )


def own_farm_description(agents: int) -> str:
    """The agents this bench starts, with the settings they read from this environment."""
    settings = AgentSettings()
    return (
        f"{agents} agent(s) x concurrency {settings.concurrency} "
        f"(up to {settings.max_browsers} browsers each), started by the bench"
    )


def _levels(text: str) -> list[int]:
    parse = bounded(int, 1, MAX_CONCURRENCY)
    return sorted({parse(part.strip()) for part in text.split(",") if part.strip()})


def _local_url(text: str) -> str:
    url = urlsplit(text)
    if url.scheme != "http" or url.hostname != "127.0.0.1":
        raise argparse.ArgumentTypeError(f"must be http://127.0.0.1:<port>, got {text!r}")
    return text.rstrip("/")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; --farm-url and --key go together."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=bounded(int, 1, MAX_TASKS), default=60, help="tasks per cell")
    parser.add_argument(
        "--concurrency", type=_levels, default=[1, 2, 4], help="comma-separated levels, e.g. 1,2,4"
    )
    parser.add_argument(
        "--agents",
        type=bounded(int, 1, MAX_AGENTS),
        default=1,
        help="agents of the bench's farm (default 1, as `farm up`)",
    )
    parser.add_argument(
        "--farm-url",
        type=_local_url,
        help="a running farm's Envoy (http://127.0.0.1:PORT) instead of starting one; "
        "its agents must be allowed to reach 127.0.0.1",
    )
    parser.add_argument("--key", help="an API key with tasks.write and artifacts.read")
    args = parser.parse_args(argv)
    if not args.concurrency:
        parser.error("--concurrency: give at least one level")
    if (args.farm_url is None) != (args.key is None):
        parser.error("--farm-url and --key go together")
    return args


def main(argv: list[str] | None = None) -> None:
    """Runs the comparison and prints the table and the machine's facts."""
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        page_url = stack.enter_context(serve_page(PAGE_HTML, "/bench"))
        if args.farm_url is None:
            farm = stack.enter_context(local_farm(args.agents, "bench", progress))
            farm_url, key = farm.envoy_url, farm.admin_key
            description = own_farm_description(args.agents)
            agent_pids = agent_process_ids(farm)
        else:
            farm_url, key = args.farm_url, args.key
            description = f"external at {farm_url}"
            agent_pids = []
        rows, chromium_version = asyncio.run(
            compare(farm_url, key, page_url, args.n, args.concurrency, agent_pids)
        )
    for row in rows:
        for way, result in (("farm", row.farm), ("playwright", row.baseline)):
            if result.errors:
                progress(f"C={row.concurrency} {way}: first error: {result.errors[0]}")
    print(table(rows))
    print()
    print(machine_facts(chromium_version, description, args.n, load_before))


if __name__ == "__main__":
    main()
