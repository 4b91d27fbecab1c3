"""The agent's memory against its limit: when warm contexts must give memory back.

A warm context keeps a renderer and its caches alive between tasks; that is what
makes it fast, and what a busy agent cannot always afford. The limit is the agent's
setting, or else its cgroup's (a container's) limit; with neither there is no
pressure. Memory is counted as PSS over the agent and its Chromium processes, so
pages shared between the browser's processes count once.
"""

import asyncio
import os
from pathlib import Path

import psutil

from farm_agent.metrics import process_tree

CGROUP_LIMIT_FILES = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)
UNLIMITED_FROM = 1 << 60
"""cgroup v1 spells "no limit" as a number near 2**63."""


def cgroup_limit_bytes(files: tuple[Path, ...] = CGROUP_LIMIT_FILES) -> int:
    """The cgroup memory limit of this process in bytes; 0 if it has none or none is readable."""
    for path in files:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < UNLIMITED_FROM:
            return int(text)
        return 0
    return 0


def tree_proportional_bytes(root: int | None = None) -> int:
    """PSS of process `root` (default: this one) and its descendants; RSS where PSS is hidden."""
    total = 0
    for pid in process_tree(root or os.getpid()):
        try:
            process = psutil.Process(pid)
            try:
                total += process.memory_full_info().pss
            except (psutil.AccessDenied, AttributeError):
                total += process.memory_info().rss
        except psutil.Error:
            continue  # Ended since the tree was read.
    return total


class MemoryPressure:
    """Whether the agent's memory is past `trim_percent` of its limit."""

    def __init__(self, limit_bytes: int, trim_percent: float) -> None:
        self.limit_bytes = limit_bytes or cgroup_limit_bytes()
        self.trim_percent = trim_percent

    @property
    def threshold_bytes(self) -> int:
        """The use past which warm contexts are given up; 0 when there is no limit."""
        return int(self.limit_bytes * self.trim_percent / 100)

    async def pressed(self) -> bool:
        """True when the agent uses more than the threshold now (read off the event loop)."""
        threshold = self.threshold_bytes
        if threshold == 0:
            return False
        return await asyncio.to_thread(tree_proportional_bytes) > threshold
