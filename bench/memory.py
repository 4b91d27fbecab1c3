"""Agent memory: idle, per busy slot, per warm context, and creep after a soak.

On a farm of its own with one agent (concurrency C, C warm contexts, idle contexts
and browsers closing after a few seconds), the bench reads the agent's memory as
PSS over the agent's process and its Chromium processes (pages Chromium's
processes share count once), from /proc:

- idle: after start-up, once nothing runs (the issue's goal: at most 300 MiB);
- per busy slot: the peak while C context-per-task screenshots run side by side,
  less idle, divided by C;
- per warm context: after a warm stream of one tenant at concurrency C, with its
  warm contexts kept idle, less idle, divided by the contexts kept;
- soak: `--soak` full-page screenshots (context per task) at concurrency C, then idle
  again once the warm contexts and spare browsers have closed: the creep (goal: within
  10 % of the idle size before), and the Chromium processes left that belong to no
  browser of the agent (goal: none).

    .venv/bin/python bench/memory.py --soak 2000 --concurrency 4
"""

import argparse
import asyncio
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psutil
from pages import distinct_bytes
from screenshots import PAGE_HTML, TASK_TIMEOUT_MS, VIEWPORT, FarmShooter, measure

from farm_agent.browser.memory import tree_proportional_bytes
from farm_agent.metrics import process_tree
from farm_cli.launcher.farm import LocalFarm

from harness import bounded, local_farm, progress_reporter, serve_page

progress = progress_reporter("memory")
MIB = 1024 * 1024
IDLE_SECONDS = 4
"""The bench agent's FARM_AGENT_BROWSER_IDLE_SECONDS: warm contexts close this soon."""
SETTLE_SECONDS = 3 * IDLE_SECONDS
IDLE_GOAL_MIB = 300
CREEP_GOAL_PERCENT = 10
CHROMIUM_NAMES = re.compile(r"^(chromium|chrome)", re.IGNORECASE)


def agent_pss_mib(farm: LocalFarm) -> float:
    """The agent's PSS with its browsers, in MiB."""
    return tree_proportional_bytes(farm.process("agent-1").pid) / MIB


PARTS = ("agent process", "Playwright driver (node)", "task browsers", "session browsers")


def parts_of(farm: LocalFarm) -> dict[str, list[int]]:
    """The agent's processes by part: its own, Playwright's driver, task and session browsers."""
    root = farm.process("agent-1").pid
    parts: dict[str, list[int]] = {part: [] for part in PARTS}
    for pid in process_tree(root):
        try:
            process = psutil.Process(pid)
            command = " ".join(process.cmdline())
            name = process.name()
        except psutil.Error:
            continue
        if pid == root:
            parts["agent process"].append(pid)
        elif name.startswith("node"):
            parts["Playwright driver (node)"].append(pid)
        elif "/sessions/" in command:
            parts["session browsers"].append(pid)
        else:
            parts["task browsers"].append(pid)
    return parts


def pss_mib(pids: list[int]) -> float:
    """The PSS of `pids` in MiB (those that have ended count 0)."""
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_full_info().pss
        except psutil.Error:
            continue
    return total / MIB


def idle_parts_mib(farm: LocalFarm) -> dict[str, tuple[float, float]]:
    """Each part of the agent (and the whole) as (PSS, distinct physical pages) in MiB.

    The distinct pages do not depend on what else runs on the machine (bench/pages.py);
    they are 0 when the bench does not run as root.
    """
    parts = parts_of(farm)
    figures = {part: (pss_mib(pids), distinct_bytes(pids) / MIB) for part, pids in parts.items()}
    everything = [pid for pids in parts.values() for pid in pids]
    figures["whole agent"] = (pss_mib(everything), distinct_bytes(everything) / MIB)
    return figures


@contextmanager
def peak_of(farm: LocalFarm) -> Iterator[list[float]]:
    """Samples the agent's PSS every 0.2 s while the block runs; yields the samples."""
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            samples.append(agent_pss_mib(farm))

    thread = threading.Thread(target=sample, name="pss-sampler", daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join(timeout=5)


def warm_contexts_kept(farm: LocalFarm) -> int:
    """The agent's `agent_warm_contexts` gauge, from its metrics endpoint."""
    port = farm.config.ports.agent_metrics(1)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = re.search(r"^agent_warm_contexts (\S+)$", text, re.MULTILINE)
    return int(float(found.group(1))) if found else 0


def chromium_left(home: str) -> list[int]:
    """Chromium processes of a farm (their profile is under its home) still running.

    Read once the farm has stopped: while it runs, Chromium's crash handlers detach
    from their browsers and would look like strays.
    """
    left = []
    for found in psutil.process_iter(["pid", "name", "cmdline"]):
        info = found.info
        if CHROMIUM_NAMES.match(info["name"] or "") and home in " ".join(info["cmdline"] or []):
            left.append(info["pid"])
    return left


async def run_shots(
    farm: LocalFarm, page_url: str, tasks: int, concurrency: int, **extra: object
) -> int:
    """`tasks` screenshots through the farm; the number that failed."""
    async with httpx.AsyncClient(
        base_url=farm.envoy_url,
        headers={"authorization": f"Bearer {farm.admin_key}"},
        timeout=httpx.Timeout(TASK_TIMEOUT_MS / 1000 + 30),
    ) as http:
        shooter = FarmShooter(http, page_url, dict(extra))
        result = await measure(shooter.shoot, tasks, concurrency)
    for error in result.errors[:1]:
        progress(f"first error: {error}")
    return len(result.errors)


def settle(farm: LocalFarm) -> float:
    """Waits until idle contexts and browsers have closed; then the agent's PSS in MiB."""
    time.sleep(SETTLE_SECONDS)
    return agent_pss_mib(farm)


def report(
    figures: dict[str, float],
    parts: dict[str, tuple[float, float]],
    parts_after: dict[str, tuple[float, float]],
    soak: int,
    concurrency: int,
    strays: int,
) -> str:
    """The figures as a Markdown table, with the goals they are held against.

    Each part of the idle agent is shown before the soak and (in brackets) after it,
    so that a creep names the process it is in; a second table counts the idle agent's
    distinct physical pages, which do not move with the machine's other load.
    """
    idle, after = figures["idle"], figures["idle after soak"]
    creep = (after - idle) / idle * 100
    rows = [
        ("idle agent with its pool (PSS)", f"{idle:.0f} MiB", f"≤ {IDLE_GOAL_MIB} MiB"),
        *(
            (
                f"… of which {part}",
                f"{parts[part][0]:.0f} MiB ({parts_after[part][0]:.0f} after the soak)",
                "—",
            )
            for part in PARTS
        ),
        ("per busy slot (context per task)", f"{figures['per slot']:.0f} MiB", "—"),
        ("per warm context (idle, kept)", f"{figures['per warm']:.0f} MiB", "—"),
        (
            f"idle after {soak} tasks",
            f"{after:.0f} MiB ({creep:+.1f} %)",
            f"within {CREEP_GOAL_PERCENT} %",
        ),
        ("Chromium processes left after the farm stopped", str(strays), "0"),
    ]
    lines = ["| measure | value | goal |", "|---|---:|---:|"]
    lines += [f"| {name} | {value} | {goal} |" for name, value, goal in rows]
    lines += ["", "| distinct physical pages, idle | before the soak | after it | change |"]
    lines.append("|---|---:|---:|---:|")
    for part in ("whole agent", *PARTS):
        (_, before), (_, later) = parts[part], parts_after[part]
        change = (later - before) / before * 100 if before else 0.0
        lines.append(f"| {part} | {before:.0f} MiB | {later:.0f} MiB | {change:+.1f} % |")
    lines.append("")
    lines.append(
        f"Machine: {os.cpu_count()} CPUs; one agent, FARM_AGENT_CONCURRENCY={concurrency}, "
        f"FARM_AGENT_WARM_CONTEXTS={concurrency}, FARM_AGENT_BROWSER_IDLE_SECONDS and "
        f"FARM_AGENT_SESSION_SPARE_KEEP_SECONDS {IDLE_SECONDS}; "
        f"{VIEWPORT['width']}x{VIEWPORT['height']} PNGs of a {len(PAGE_HTML)}-byte local page "
        "(the soak's full page)."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Runs the measures on a farm of the bench's own and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--soak", type=bounded(int, 1, 100_000), default=2000, help="soak tasks")
    parser.add_argument("--concurrency", type=bounded(int, 1, 16), default=4, help="agent slots")
    parser.add_argument(
        "--agent-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable more for the agent (to compare settings run against run)",
    )
    args = parser.parse_args(argv)
    c = args.concurrency
    agent_env = {
        **dict(setting.split("=", 1) for setting in args.agent_env),
        "FARM_AGENT_CONCURRENCY": str(c),
        "FARM_AGENT_WARM_CONTEXTS": str(c),
        "FARM_AGENT_BROWSER_IDLE_SECONDS": str(IDLE_SECONDS),
        # Idle means no session lately too: the spare session browsers have closed.
        "FARM_AGENT_SESSION_SPARE_KEEP_SECONDS": str(IDLE_SECONDS),
    }
    figures: dict[str, float] = {}
    with (
        serve_page(PAGE_HTML, "/bench") as page_url,
        local_farm(1, "memory", progress, service_env=agent_env) as farm,
    ):
        progress("warming up")
        asyncio.run(run_shots(farm, page_url, 2 * c, c, isolation="ISOLATION_CONTEXT"))
        figures["idle"] = settle(farm)
        parts = idle_parts_mib(farm)
        progress(f"idle: {figures['idle']:.0f} MiB; busy slots")
        with peak_of(farm) as samples:
            asyncio.run(run_shots(farm, page_url, 10 * c, c, isolation="ISOLATION_CONTEXT"))
        figures["per slot"] = (max(samples, default=figures["idle"]) - figures["idle"]) / c
        progress("warm contexts")
        asyncio.run(run_shots(farm, page_url, 10 * c, c, isolation="ISOLATION_WARM"))
        time.sleep(1)  # the last resets
        kept = warm_contexts_kept(farm)
        figures["per warm"] = (agent_pss_mib(farm) - figures["idle"]) / max(kept, 1)
        progress(f"{kept} warm contexts kept; soak of {args.soak} full-page tasks")
        failed = asyncio.run(
            run_shots(
                farm,
                page_url,
                args.soak,
                c,
                isolation="ISOLATION_CONTEXT",
                screenshot={"fullPage": True},
            )
        )
        figures["idle after soak"] = settle(farm)
        parts_after = idle_parts_mib(farm)
        home = str(farm.home)
        if failed:
            progress(f"{failed} soak tasks failed")
    time.sleep(1)
    strays = len(chromium_left(home))
    print(report(figures, parts, parts_after, args.soak, c, strays))


if __name__ == "__main__":
    main()
