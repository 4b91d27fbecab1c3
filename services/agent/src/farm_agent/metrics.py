"""The agent's Prometheus metrics, and the memory its process tree uses."""

import os
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

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
circuit_state = Gauge(
    "agent_circuit_state",
    "A target host's circuit breaker as this agent last saw it: 0 closed, 1 half-open, 2 open.",
    ["host"],
)
circuit_transitions_total = Counter(
    "agent_circuit_transitions_total",
    "Breaker state changes this agent made, by host and the state entered.",
    ["host", "state"],
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
    "agent_browsers_killed_total", "Browsers killed because they could not close a context."
)
blocked_requests_total = Counter(
    "farm_agent_blocked_requests_total",
    "Requests of pages the egress guard refused, by reason (loopback, private, metadata...).",
    ["reason"],
)
memory_usage_bytes = Gauge(
    "agent_memory_usage_bytes", "Resident memory of the agent and its browser processes."
)

_PROC = Path("/proc")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def _parent_of(pid: int) -> int | None:
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return int(stat.rsplit(")", 1)[1].split()[1])


def _resident_bytes(pid: int) -> int:
    try:
        return int((_PROC / str(pid) / "statm").read_text().split()[1]) * _PAGE_BYTES
    except OSError:
        return 0


def process_tree(root: int) -> set[int]:
    """`root` and all its descendants, as /proc shows them now."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            parent = _parent_of(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    tree, pending = {root}, [root]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in tree:
                tree.add(child)
                pending.append(child)
    return tree


def tree_resident_bytes(root: int | None = None) -> int:
    """Resident memory of process `root` (default: this one) and its descendants, in bytes."""
    return sum(_resident_bytes(pid) for pid in process_tree(root or os.getpid()))


memory_usage_bytes.set_function(tree_resident_bytes)
