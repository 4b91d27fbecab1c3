"""CPU seconds per farm process from /proc, children included (an agent's Chromium).

A bench takes `farm_cpu` before and after a measured run; the difference over the
tasks is CPU per task per process, the figure a shared machine's load affects least.
"""

import os
import time
from collections.abc import Mapping
from pathlib import Path

from farm_cli.launcher.farm import LocalFarm

CLIENT = "bench client"
"""The bench's own process (its HTTP client), in `farm_cpu`'s answer."""


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command's ")" (empty if it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _children() -> dict[int, list[int]]:
    """Every live process's children, by parent PID."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree_cpu_seconds(pid: int, children: Mapping[int, list[int]]) -> float:
    """User + system CPU of `pid`, its live descendants and the children they reaped."""
    fields = _stat_fields(pid)
    if not fields:
        return 0.0
    # utime, stime, cutime, cstime: fields 14-17 of stat, counted after the ")".
    own = sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return own + sum(tree_cpu_seconds(child, children) for child in children.get(pid, []))


def farm_cpu(farm: LocalFarm) -> dict[str, float]:
    """CPU seconds so far of each farm process (with its children) and of this bench."""
    children = _children()
    spent = {
        name: tree_cpu_seconds(process.pid, children) for name, process in farm.processes.items()
    }
    spent[CLIENT] = time.process_time()
    return spent


def per_task_ms(
    before: Mapping[str, float], after: Mapping[str, float], tasks: int
) -> dict[str, float]:
    """CPU milliseconds per task of each process between two `farm_cpu` readings."""
    return {name: (after[name] - before.get(name, 0.0)) / tasks * 1000 for name in after}
