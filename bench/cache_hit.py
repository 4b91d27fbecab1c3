"""A result-cache hit through Envoy against a plain GetTask, and against a screenshot that runs.

One screenshot of a small local page is run (POST /v1/tasks:run), then the same spec is
sent N more times, one at a time: each is answered from the tenant's result cache
(`"cached": true`). The bench prints the p50/p95 of those hits next to N GetTasks of the
same task through the same Envoy, auth and scheduler (the floor a hit is measured
against), and N screenshots asked with `cacheTtlSeconds` 0, so that each really runs.
Unless `--farm-url` and `--key` are given it starts its own farm and stops it.

    .venv/bin/python bench/cache_hit.py --n 200
"""

import argparse
import contextlib
import os
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from harness import bounded, local_farm, progress_reporter, serve_page

PAGE_HTML = b"""<!doctype html><html><head><title>Cache bench</title></head>
<body><h1>browserfarm cache bench</h1><p>A small fixed page.</p></body></html>"""
WARMUP = 5
RAN_TASKS = 10
"""Screenshots that really run: few, as each costs a browser context."""

progress = progress_reporter("cache")


@dataclass(frozen=True)
class Timings:
    """Latencies of one kind of call, in milliseconds."""

    name: str
    latencies_ms: list[float]

    def percentile(self, percent: int) -> float:
        """The `percent`th percentile latency."""
        cuts = statistics.quantiles(self.latencies_ms, n=100, method="inclusive")
        return cuts[percent - 1]


def timed(name: str, count: int, call: Callable[[], None]) -> Timings:
    """`count` sequential calls after WARMUP unmeasured ones."""
    for _ in range(WARMUP):
        call()
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - start) * 1000)
    return Timings(name, latencies)


def expect(response: httpx.Response, cached: bool | None = None) -> dict[str, object]:
    """The answer's JSON; fails loudly on an error or a cache flag other than `cached`."""
    if response.status_code != 200:
        raise SystemExit(f"HTTP {response.status_code}: {response.text}")
    task = dict(response.json())
    if task.get("status") not in (None, "TASK_STATUS_SUCCEEDED"):
        raise SystemExit(f"task did not succeed: {task}")
    if cached is not None and task.get("cached", False) != cached:
        raise SystemExit(f"expected cached={cached}: {task}")
    return task


def measure(farm_url: str, key: str, page_url: str, count: int) -> list[Timings]:
    """The three timings, against the farm at `farm_url`."""
    spec = {"url": page_url, "screenshot": {}, "cacheTtlSeconds": 3600}
    fresh = {**spec, "cacheTtlSeconds": 0}
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=farm_url, headers=headers, timeout=60) as http:
        task_id = expect(http.post("/v1/tasks:run", json=spec), cached=False)["id"]

        def hit() -> None:
            expect(http.post("/v1/tasks:run", json=spec), cached=True)

        def get() -> None:
            expect(http.get(f"/v1/tasks/{task_id}"))

        def run() -> None:
            expect(http.post("/v1/tasks:run", json=fresh), cached=False)

        progress(f"first run {task_id}; measuring {count} hits and {count} GetTasks")
        hits = timed("RunTask, cache hit", count, hit)
        gets = timed("GetTask (floor)", count, get)
        progress(f"measuring {RAN_TASKS} screenshots that run")
        runs = timed("RunTask, runs (cacheTtlSeconds 0)", RAN_TASKS, run)
    return [hits, gets, runs]


def table(timings: list[Timings]) -> str:
    """A Markdown table of the timings, each with its ratio to the GetTask floor."""
    floor = timings[1].percentile(50)
    lines = ["| call | n | p50 ms | p95 ms | p50 / GetTask p50 |", "|---|---|---|---|---|"]
    for each in timings:
        p50, p95 = each.percentile(50), each.percentile(95)
        lines.append(
            f"| {each.name} | {len(each.latencies_ms)} | {p50:.1f} | {p95:.1f} | "
            f"{p50 / floor:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Parses the arguments, measures, prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=bounded(int, 10, 5000), default=200, help="calls per kind")
    parser.add_argument("--farm-url", default="", help="a running farm's Envoy URL")
    parser.add_argument("--key", default="", help="its API key (with --farm-url)")
    args = parser.parse_args()
    # A path of its own, so that no earlier result of the tenant's answers the first run.
    path = f"/cache-bench-{secrets.token_hex(4)}"
    load = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        page_url = stack.enter_context(serve_page(PAGE_HTML, path))
        if args.farm_url:
            farm_url, key = args.farm_url, args.key
        else:
            farm = stack.enter_context(local_farm(1, "cache", progress))
            farm_url, key = farm.envoy_url, farm.admin_key
        print(table(measure(farm_url, key, page_url, args.n)))
    print(f"\nload average (1 min) at the start: {load:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
