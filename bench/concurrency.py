"""Throughput and p95 latency against concurrency: farm cold, warm, cached, plain Playwright.

One farm (one agent with concurrency and warm contexts at the highest level), one
run: for each concurrency C, N screenshots (1280x800 PNG of a small local page) four
ways, each `POST /v1/tasks:run` then `GET /v1/artifacts/{id}:content` for the farm:

- farm cold: `"isolation": "ISOLATION_CONTEXT"`, a new browser context per task;
- farm warm: `"isolation": "ISOLATION_WARM"`, the tenant's kept page, cleared between tasks;
- farm cached: the same spec with a cache TTL, answered from the result cache;
- Playwright: plain Playwright, a new context per task on a browser with the agents' flags.

It prints a Markdown table, the CPU per task of each farm process (from /proc, an
agent's Chromium counted with it) for the farm's ways, and writes a PNG plot
(default docs/performance-concurrency.png).

    .venv/bin/python bench/concurrency.py --n 30 --concurrency 1,2,4
"""

import argparse
import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from browsers import agent_process_ids, browsers_ran
from process_cpu import farm_cpu, per_task_ms
from screenshots import (
    MAX_TASKS,
    PAGE_HTML,
    BrowserShooter,
    FarmShooter,
    Measurement,
    _levels,
    _ms,
    farm_client_and_browser,
    machine_facts,
    measure,
    warm_up,
)

from farm_cli.launcher.farm import LocalFarm

from harness import bounded, local_farm, progress_reporter, serve_page

progress = progress_reporter("concurrency")
FARM_WAYS: dict[str, dict[str, object]] = {
    "farm cold": {"isolation": "ISOLATION_CONTEXT"},
    "farm warm": {"isolation": "ISOLATION_WARM"},
    "farm cached": {"isolation": "ISOLATION_WARM", "cacheTtlSeconds": 3600},
}
WAYS = (*FARM_WAYS, "Playwright")
DEFAULT_PLOT = Path(__file__).resolve().parent.parent / "docs" / "performance-concurrency.png"


@dataclass(frozen=True)
class Cell:
    """One way at one concurrency: its measurement and, for the farm, CPU ms per task."""

    measurement: Measurement
    cpu_ms: dict[str, float]


async def compare(
    farm: LocalFarm, page_url: str, tasks: int, levels: list[int]
) -> tuple[dict[int, dict[str, Cell]], str]:
    """Every way at every level, in one run; the cells and the Chromium version."""
    async with farm_client_and_browser(farm.envoy_url, farm.admin_key, max(levels)) as (
        http,
        browser,
    ):
        shooters = {
            way: FarmShooter(http, page_url, extra).shoot for way, extra in FARM_WAYS.items()
        }
        shooters["Playwright"] = BrowserShooter(browser, page_url).shoot
        progress("warming up (the cached way's first shot fills the cache)")
        for shoot in shooters.values():
            await warm_up(shoot, max(levels))
        cells: dict[int, dict[str, Cell]] = {}
        for level in levels:
            progress(f"measuring {tasks} tasks at concurrency {level}")
            cells[level] = {}
            for way, shoot in shooters.items():
                before = farm_cpu(farm)
                result = await measure(shoot, tasks, level)
                cpu = per_task_ms(before, farm_cpu(farm), tasks) if way in FARM_WAYS else {}
                cells[level][way] = Cell(result, cpu)
        return cells, f"{browser.version} ({browsers_ran(agent_process_ids(farm))})"


def table(cells: dict[int, dict[str, Cell]]) -> str:
    """Tasks/s, p50 and p95 per way and concurrency, with warm / Playwright."""
    lines = ["| C | way | tasks/s | p50 ms | p95 ms | errors |", "|---:|---|---:|---:|---:|---:|"]
    for level, row in cells.items():
        for way in WAYS:
            result = row[way].measurement
            lines.append(
                f"| {level} | {way} | {result.tasks_per_second:.2f} "
                f"| {_ms(result.percentile_ms(50))} | {_ms(result.percentile_ms(95))} "
                f"| {len(result.errors)} |"
            )
        warm, baseline = row["farm warm"].measurement, row["Playwright"].measurement
        if baseline.tasks_per_second:
            ratio = warm.tasks_per_second / baseline.tasks_per_second
            lines.append(f"| {level} | farm warm / Playwright | {ratio:.2f}x | | | |")
    return "\n".join(lines)


def cpu_table(cells: dict[int, dict[str, Cell]]) -> str:
    """CPU ms per task of each farm process, per farm way and concurrency (largest first)."""
    first = next(iter(cells.values()))["farm warm"].cpu_ms
    names = sorted(first, key=lambda name: -first[name])
    lines = [
        "| C | way | " + " | ".join(names) + " | total |",
        "|---:|---|" + "---:|" * (len(names) + 1),
    ]
    for level, row in cells.items():
        for way in FARM_WAYS:
            cpu = row[way].cpu_ms
            spent = " | ".join(_cpu_cell(cpu.get(name, 0.0)) for name in names)
            recycled = any(spent_ms < 0 for spent_ms in cpu.values())
            total = _cpu_cell(-1.0 if recycled else sum(cpu.values()))
            lines.append(f"| {level} | {way} | {spent} | {total} |")
    return "\n".join(lines)


def _cpu_cell(milliseconds: float) -> str:
    # Negative when a browser was recycled in the cell: its processes' CPU left the tree.
    return f"{milliseconds:.0f}" if milliseconds >= 0 else "—"


def plot(cells: dict[int, dict[str, Cell]], title: str, path: Path) -> None:
    """Throughput and p95 latency against concurrency, one line per way, as a PNG."""
    levels = list(cells)
    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for way in WAYS:
        results = [cells[level][way].measurement for level in levels]
        throughput.plot(levels, [r.tasks_per_second for r in results], marker="o", label=way)
        latency.plot(levels, [r.percentile_ms(95) for r in results], marker="o", label=way)
    throughput.set(xlabel="concurrency", ylabel="tasks/s", title="Throughput", xticks=levels)
    latency.set(xlabel="concurrency", ylabel="ms", title="p95 latency", xticks=levels)
    for axes in (throughput, latency):
        # Log scales: cache hits run an order of magnitude above the rest.
        axes.set_yscale("log")
        axes.grid(True, which="both", alpha=0.3)
    throughput.legend()
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    """Runs every way on a farm of the bench's own, prints the tables and writes the plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--n", type=bounded(int, 1, MAX_TASKS), default=30, help="tasks per cell (default 30)"
    )
    parser.add_argument(
        "--concurrency", type=_levels, default=[1, 2, 4], help="comma-separated levels, e.g. 1,2,4"
    )
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help="where the PNG goes")
    args = parser.parse_args(argv)
    top = str(max(args.concurrency))
    agent_env = {"FARM_AGENT_CONCURRENCY": top, "FARM_AGENT_WARM_CONTEXTS": top}
    load_before = os.getloadavg()[0]
    with (
        serve_page(PAGE_HTML, "/bench") as page_url,
        local_farm(1, "concurrency", progress, service_env=agent_env) as farm,
    ):
        cells, chromium_version = asyncio.run(compare(farm, page_url, args.n, args.concurrency))
    print(table(cells))
    print()
    print("CPU ms per task of each farm process (an agent with its Chromium; — where a")
    print("browser was recycled during the cell, so its processes' CPU left the tree):")
    print(cpu_table(cells))
    print()
    description = f"1 agent x concurrency {top}, FARM_AGENT_WARM_CONTEXTS={top}"
    facts = machine_facts(chromium_version, description, args.n, load_before)
    print(facts)
    load_after = os.getloadavg()[0]
    title = (
        f"{os.cpu_count()} CPUs, load {load_before:.1f} -> {load_after:.1f}, N={args.n} per point, "
        f"Chromium {chromium_version}"
    )
    plot(cells, title, args.plot)
    progress(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
