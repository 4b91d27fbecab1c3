"""What tracing costs: the screenshot bench through two farms, traces off and on, side by side.

Two farms of one agent each run at once on free ports: one as a farm runs by default
(no OTLP endpoint: no exporter, no interceptors, no-op spans), one with `farm up
--traces` (every process and Envoy exporting every span over OTLP/gRPC to its trace
sink, which writes them to files). For each concurrency C both take N screenshots
through Envoy (`POST /v1/tasks:run`, then the PNG), alternating which goes first, after
a few unmeasured warm-up tasks each. It prints a Markdown table (tasks/s, p50/p95
latency, errors, on/off ratios), how many spans the sink kept, and the machine's facts.

    .venv/bin/python bench/tracing_cost.py --n 60 --concurrency 1,2,4
"""

import argparse
import asyncio
import contextlib
import os
import subprocess
from pathlib import Path

import httpx
from browsers import task_browser
from screenshots import (
    MAX_TASKS,
    PAGE_HTML,
    REQUEST_TIMEOUT_SECONDS,
    FarmShooter,
    Row,
    _levels,
    _ratio,
    _row,
    machine_facts,
    measure,
    own_farm_description,
    warm_up,
)

from farm_cli.launcher.farm import LocalFarm
from farm_cli.traces.spans import kept_traces, read_trace

from harness import bounded, local_farm, progress_reporter, serve_page

progress = progress_reporter("tracing")


def farm_client(farm: LocalFarm, connections: int) -> httpx.AsyncClient:
    """HTTP/JSON to one farm's Envoy with its admin key."""
    return httpx.AsyncClient(
        base_url=farm.envoy_url,
        headers={"authorization": f"Bearer {farm.admin_key}"},
        timeout=httpx.Timeout(REQUEST_TIMEOUT_SECONDS),
        limits=httpx.Limits(max_connections=connections),
    )


async def compare(
    untraced: LocalFarm, traced: LocalFarm, page_url: str, tasks: int, levels: list[int]
) -> list[Row]:
    """Each concurrency measured on both farms; Row.farm is traced, Row.baseline is not."""
    async with (
        farm_client(untraced, max(levels)) as off_http,
        farm_client(traced, max(levels)) as on_http,
    ):
        off, on = FarmShooter(off_http, page_url), FarmShooter(on_http, page_url)
        progress("warming up")
        await warm_up(off.shoot, max(levels))
        await warm_up(on.shoot, max(levels))
        rows = []
        for index, level in enumerate(levels):
            progress(f"measuring {tasks} tasks at concurrency {level}, traces off and on")
            # Each goes first at every other level, so neither always meets a warmer machine.
            if index % 2 == 0:
                off_result = await measure(off.shoot, tasks, level)
                on_result = await measure(on.shoot, tasks, level)
            else:
                on_result = await measure(on.shoot, tasks, level)
                off_result = await measure(off.shoot, tasks, level)
            rows.append(Row(level, on_result, off_result))
        return rows


def table(rows: list[Row]) -> str:
    """The results as a Markdown table, with an on/off ratio row per concurrency."""
    lines = [
        "| C | traces | tasks/s | p50 ms | p95 ms | errors |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        on, off = row.farm, row.baseline
        lines += [
            _row(row.concurrency, "off", off),
            _row(row.concurrency, "on (OTLP to the sink)", on),
            f"| {row.concurrency} | on / off | {_ratio(on.tasks_per_second, off.tasks_per_second)}"
            f" | {_ratio(on.percentile_ms(50), off.percentile_ms(50))}"
            f" | {_ratio(on.percentile_ms(95), off.percentile_ms(95))} | — |",
        ]
    return "\n".join(lines)


def kept_spans(folder: Path) -> tuple[int, int]:
    """How many spans, in how many traces, the sink wrote."""
    traces = kept_traces(folder)
    return sum(len(read_trace(folder, trace_id)) for trace_id in traces), len(traces)


def first_errors(rows: list[Row]) -> None:
    """Names the first error of each cell that had one."""
    for row in rows:
        for way, result in (("on", row.farm), ("off", row.baseline)):
            if result.errors:
                progress(f"C={row.concurrency} traces {way}: first error: {result.errors[0]}")


def chromium_version() -> str:
    """The version of the Chromium the agents' task browsers run."""
    executable, _ = task_browser()
    answer = subprocess.run(
        [str(executable), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    return answer.stdout.strip().removeprefix("Chromium ") or "unknown"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=bounded(int, 1, MAX_TASKS), default=60, help="tasks per cell")
    parser.add_argument(
        "--concurrency", type=_levels, default=[1, 2, 4], help="comma-separated levels, e.g. 1,2,4"
    )
    args = parser.parse_args(argv)
    if not args.concurrency:
        parser.error("--concurrency: give at least one level")
    return args


def main(argv: list[str] | None = None) -> None:
    """Runs both farms, prints the table, the sink's count and the machine's facts."""
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        page_url = stack.enter_context(serve_page(PAGE_HTML, "/bench"))
        untraced = stack.enter_context(local_farm(1, "tracing-off", progress))
        traced = stack.enter_context(local_farm(1, "tracing-on", progress, traces=True))
        rows = asyncio.run(compare(untraced, traced, page_url, args.n, args.concurrency))
        # The last spans leave within the services' batch delay, Envoy's within 5 s.
        spans, traces = kept_spans(traced.config.traces_folder)
    first_errors(rows)
    print(table(rows))
    print()
    print(f"The traced farm's sink kept {spans} spans in {traces} traces.")
    description = f"two farms side by side, each {own_farm_description(1)}"
    print(machine_facts(chromium_version(), description, args.n, load_before))


if __name__ == "__main__":
    main()
