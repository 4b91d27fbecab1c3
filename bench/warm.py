"""Warm pages: a stream of one tenant's screenshots, warm against context-per-task.

For each concurrency C it takes N screenshots (1280x800 PNG) of a small local page
three ways, in the same run, on the same machine:

- farm warm: `POST /v1/tasks:run` with `"isolation": "ISOLATION_WARM"` through Envoy,
  then the PNG (`GET /v1/artifacts/{id}:content`): the agent reuses a cleared context
  and page of the tenant's;
- farm context: the same with `"isolation": "ISOLATION_CONTEXT"` (a new context per task);
- Playwright: one browser launched with the agents' own task-browser executable and
  flags, a new context per task
  (the issue's baseline: plain Playwright at context-per-task);
- Playwright reused page: the same browser, a kept page per worker and nothing
  cleared between tasks: the ceiling no isolation can beat.

All tasks come from one API key (one tenant). The bench's farm has one agent (or
`--agents`) whose concurrency and warm context limit are the highest level asked for. It prints a
Markdown table with the ratios farm warm / Playwright and farm warm / farm context,
and the machine's facts.

    .venv/bin/python bench/warm.py --n 60 --concurrency 1,2,4
"""

import argparse
import asyncio
import os
from dataclasses import dataclass, field

from browsers import agent_process_ids, browsers_ran
from playwright.async_api import Browser, Page
from playwright.async_api import Error as PlaywrightError
from screenshots import (
    MAX_TASKS,
    PAGE_HTML,
    TASK_TIMEOUT_MS,
    VIEWPORT,
    BrowserShooter,
    FarmShooter,
    Measurement,
    ShotFailed,
    _levels,
    _ms,
    _ratio,
    farm_client_and_browser,
    machine_facts,
    measure,
    require_png,
    warm_up,
)

from farm_cli.launcher.ports import MAX_AGENTS

from harness import bounded, local_farm, progress_reporter, serve_page

progress = progress_reporter("warm")
WAYS = ("farm warm", "farm context", "Playwright", "Playwright reused page")


@dataclass
class ReusedPageShooter:
    """The browser's ceiling: plain Playwright reusing pages (one per worker), no reset at all."""

    browser: Browser
    page_url: str
    pages: "asyncio.Queue[Page]" = field(default_factory=asyncio.Queue)

    async def shoot(self) -> None:
        """One screenshot on a kept page (opened on first use, up to one per worker)."""
        if self.pages.empty():
            context = await self.browser.new_context(viewport=VIEWPORT)
            await self.pages.put(await context.new_page())
        page = await self.pages.get()
        try:
            await page.goto(self.page_url, wait_until="load", timeout=TASK_TIMEOUT_MS)
            require_png(await page.screenshot(timeout=TASK_TIMEOUT_MS), "reused page")
        except PlaywrightError as error:
            raise ShotFailed(f"reused page: {type(error).__name__}: {error}") from error
        finally:
            await self.pages.put(page)


@dataclass(frozen=True)
class WarmRow:
    """One concurrency's measurements, by way."""

    concurrency: int
    results: dict[str, Measurement]


async def compare(
    farm_url: str, key: str, page_url: str, tasks: int, levels: list[int], agent_pids: list[int]
) -> tuple[list[WarmRow], str]:
    """Each level measured warm, context-per-task through the farm, then with Playwright."""
    async with farm_client_and_browser(farm_url, key, max(levels)) as (http, browser):
        shooters = {
            "farm warm": FarmShooter(http, page_url, {"isolation": "ISOLATION_WARM"}).shoot,
            "farm context": FarmShooter(http, page_url, {"isolation": "ISOLATION_CONTEXT"}).shoot,
            "Playwright": BrowserShooter(browser, page_url).shoot,
            "Playwright reused page": ReusedPageShooter(browser, page_url).shoot,
        }
        progress("warming up")
        for shoot in shooters.values():
            await warm_up(shoot, max(levels))
        rows = []
        for level in levels:
            progress(f"measuring {tasks} tasks at concurrency {level}")
            results = {way: await measure(shoot, tasks, level) for way, shoot in shooters.items()}
            rows.append(WarmRow(level, results))
        return rows, f"{browser.version} ({browsers_ran(agent_pids)})"


def table(rows: list[WarmRow]) -> str:
    """The results as a Markdown table with the warm ratios per concurrency."""
    lines = [
        "| C | way | tasks/s | p50 ms | p95 ms | errors |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        for way in WAYS:
            result = row.results[way]
            lines.append(
                f"| {row.concurrency} | {way} | {result.tasks_per_second:.2f} "
                f"| {_ms(result.percentile_ms(50))} | {_ms(result.percentile_ms(95))} "
                f"| {len(result.errors)} |"
            )
        warm = row.results["farm warm"]
        for other in ("Playwright", "farm context"):
            against = row.results[other]
            lines.append(
                f"| {row.concurrency} | farm warm / {other} "
                f"| {_ratio(warm.tasks_per_second, against.tasks_per_second)} "
                f"| {_ratio(warm.percentile_ms(50), against.percentile_ms(50))} | — | — |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Runs the comparison on a farm of the bench's own and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=bounded(int, 1, MAX_TASKS), default=60, help="tasks per cell")
    parser.add_argument(
        "--concurrency", type=_levels, default=[1, 2, 4], help="comma-separated levels, e.g. 1,2,4"
    )
    parser.add_argument(
        "--agents",
        type=bounded(int, 1, MAX_AGENTS),
        default=1,
        help="agents of the bench's farm (default 1); each has concurrency and warm contexts "
        "of the highest level",
    )
    args = parser.parse_args(argv)
    top = str(max(args.concurrency))
    agent_env = {"FARM_AGENT_CONCURRENCY": top, "FARM_AGENT_WARM_CONTEXTS": top}
    load_before = os.getloadavg()[0]
    with (
        serve_page(PAGE_HTML, "/bench") as page_url,
        local_farm(args.agents, "warm", progress, service_env=agent_env) as farm,
    ):
        rows, chromium_version = asyncio.run(
            compare(
                farm.envoy_url,
                farm.admin_key,
                page_url,
                args.n,
                args.concurrency,
                agent_process_ids(farm),
            )
        )
    for row in rows:
        for way, result in row.results.items():
            if result.errors:
                progress(f"C={row.concurrency} {way}: first error: {result.errors[0]}")
    print(table(rows))
    print()
    description = (
        f"{args.agents} agent(s) x concurrency {top}, FARM_AGENT_WARM_CONTEXTS={top}, "
        "started by the bench"
    )
    print(machine_facts(chromium_version, description, args.n, load_before))


if __name__ == "__main__":
    main()
