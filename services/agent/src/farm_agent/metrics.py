"""The agent's Prometheus metrics, and what its process tree uses of the machine.

Labels are bounded: statuses, error codes, reasons and kinds are fixed sets; no
metric carries a URL, a host, a task or a session id. `agent_info` carries the
agent's id, region and version, one series per agent process.
"""

import os
from collections.abc import Callable
from pathlib import Path

import psutil
from prometheus_client import Counter, Gauge, Histogram

from farm_core.breakers import BreakerState
from farm_core.egress.address_policy import Reason
from farm_core.metric_series import start_at_zero
from farm_core.queue import ANY_REGION
from farm_core.task_errors import ErrorCode

active_browsers = Gauge("agent_active_browsers", "Chromium browsers running in this agent.")
tasks_total = Counter("agent_tasks_total", "Task attempts ended, by final status.", ["status"])
task_duration_seconds = Histogram(
    "agent_task_duration_seconds",
    "Time from taking a task to acking it.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
)
pages_scraped_total = Counter("pages_scraped_total", "Pages navigated to successfully.")
screenshots_total = Counter("screenshots_total", "Screenshots taken.")
errors_total = Counter("agent_errors_total", "Failed task attempts, by error code.", ["code"])
circuit_transitions_total = Counter(
    "agent_circuit_transitions_total",
    "Breaker state changes this agent made (any host), by the state entered.",
    ["state"],
)
task_waits_total = Counter(
    "agent_task_waits_total",
    "Deliveries handed back without using an attempt, by reason.",
    ["reason"],
)
page_events_total = Counter(
    "agent_page_events_total",
    "Page events handled: dialogs dismissed, pop-ups closed, downloads refused, crashes.",
    ["kind"],
)
browsers_killed_total = Counter(
    "agent_browsers_killed_total",
    "Browsers given up and killed: they could not close a context, or failed a probe.",
)
browser_probes_total = Counter(
    "agent_browser_probes_total",
    "Probes of a browser a task timed out on, by outcome (passed, failed: given up).",
    ["outcome"],
)
blocked_requests_total = Counter(
    "farm_agent_blocked_requests_total",
    "Requests of pages the egress guard refused, by reason (loopback, private, metadata...).",
    ["reason"],
)
memory_usage_bytes = Gauge(
    "agent_memory_usage_bytes", "Resident memory of the agent and its browser processes."
)
machine_memory_bytes = Gauge(
    "agent_machine_memory_bytes", "Total memory of the machine the agent runs on."
)
cpu_usage_percent = Gauge(
    "agent_cpu_usage_percent",
    "CPU the agent and its browser processes used since the previous scrape, in percent of "
    "all the machine's cores (0-100).",
)
disk_usage_percent = Gauge(
    "agent_disk_usage_percent",
    "Used space of the file system that holds the agent's working directory, in percent.",
)
warm_contexts = Gauge(
    "agent_warm_contexts", "Warm browser contexts kept (idle or running a task) in this agent."
)
warm_context_uses_total = Counter(
    "agent_warm_context_uses_total",
    "Tasks that asked for a warm context, by what they got: reused, opened, or a fresh "
    "context (no room); and warm contexts given up: reset_failed, trimmed, memory, failed_task.",
    ["outcome"],
)
sessions_open = Gauge("agent_sessions_open", "Sessions whose browser this agent holds now.")
places = Gauge(
    "agent_places",
    "The agent's places (one per running task or open session), by state: busy or free.",
    ["state"],
)
agent_info = Gauge(
    "agent_info", "Always 1: the agent's id, region and version.", ["id", "region", "version"]
)


# Served from 0 (farm_core.metric_series): dashboards rate them from an agent's start.
start_at_zero(errors_total, code=ErrorCode)
start_at_zero(circuit_transitions_total, state=BreakerState)
start_at_zero(page_events_total, kind=("dialog", "popup", "download", "crash"))
start_at_zero(browser_probes_total, outcome=("passed", "failed"))
start_at_zero(blocked_requests_total, reason=Reason)
start_at_zero(
    warm_context_uses_total,
    outcome=("reused", "opened", "fresh", "trimmed", "memory", "reset_failed", "failed_task"),
)


def process_tree(root: int) -> set[int]:
    """`root` and all its descendants now; empty if `root` is gone."""
    try:
        parent = psutil.Process(root)
        return {root, *(child.pid for child in parent.children(recursive=True))}
    except psutil.Error:
        return set()


def tree_resident_bytes(root: int | None = None) -> int:
    """Resident memory of process `root` (default: this one) and its descendants, in bytes."""
    total = 0
    for pid in process_tree(root or os.getpid()):
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue  # Ended since the tree was read.
    return total


class TreeCpu:
    """CPU use of a process tree between two readings, in percent of the machine's cores.

    psutil measures a process's CPU from its previous reading, so the processes are
    kept from one reading to the next; the first reading of a process counts 0.
    """

    def __init__(self, root: int | None = None) -> None:
        self._root = root or os.getpid()
        self._known: dict[int, psutil.Process] = {}

    def percent(self) -> float:
        """The tree's CPU since the previous call (0 on the first), 0 to 100."""
        pids = process_tree(self._root)
        self._known = {pid: self._known.get(pid) or psutil.Process(pid) for pid in pids}
        used = 0.0
        for process in self._known.values():
            try:
                used += process.cpu_percent(interval=None)
            except psutil.Error:
                continue
        return min(100.0, used / (psutil.cpu_count() or 1))


def disk_percent(path: Path) -> float:
    """Used space of the file system holding `path` (or its nearest existing parent)."""
    existing = next((folder for folder in (path, *path.parents) if folder.exists()), Path("/"))
    return float(psutil.disk_usage(str(existing)).percent)


def watch_resources(work_dir: Path) -> None:
    """Has the resource gauges read the machine at each scrape (memory, CPU, disk of `work_dir`)."""
    cpu = TreeCpu()
    memory_usage_bytes.set_function(tree_resident_bytes)
    machine_memory_bytes.set_function(lambda: psutil.virtual_memory().total)
    cpu_usage_percent.set_function(cpu.percent)
    disk_usage_percent.set_function(lambda: disk_percent(work_dir))


def watch_work(
    agent_id: str,
    region: str,
    version: str,
    busy_places: Callable[[], int],
    free_places: Callable[[], int],
    open_sessions: Callable[[], int],
) -> None:
    """Has the work gauges read the agent's places and sessions at each scrape."""
    agent_info.labels(id=agent_id, region=region or ANY_REGION, version=version).set(1)
    places.labels(state="busy").set_function(busy_places)
    places.labels(state="free").set_function(free_places)
    sessions_open.set_function(open_sessions)


memory_usage_bytes.set_function(tree_resident_bytes)
