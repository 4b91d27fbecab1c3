"""What the agent's resource gauges read of its process tree and its disk."""

import subprocess
import sys
import time
from pathlib import Path

import psutil

from farm_agent.metrics import TreeCpu, disk_percent, process_tree, tree_resident_bytes

BURN = "import time\nend = time.monotonic() + 0.5\nwhile time.monotonic() < end: pass"


def test_a_busy_child_shows_as_cpu_use() -> None:
    cpu = TreeCpu()
    child = subprocess.Popen([sys.executable, "-c", BURN.replace("0.5", "2")])
    try:
        assert child.pid in process_tree(psutil.Process().pid)
        cpu.percent()
        time.sleep(0.5)
        used = cpu.percent()
    finally:
        child.kill()
        child.wait()
    one_core = 100.0 / (psutil.cpu_count() or 1)
    assert used > one_core / 4


def test_memory_counts_this_process_at_least() -> None:
    assert tree_resident_bytes() >= psutil.Process().memory_info().rss


def test_disk_use_is_read_from_the_nearest_existing_folder(tmp_path: Path) -> None:
    not_yet = tmp_path / "agents" / "agent-1"
    assert disk_percent(not_yet) == psutil.disk_usage(str(tmp_path)).percent
    assert 0.0 <= disk_percent(not_yet) <= 100.0


def test_a_gone_process_has_an_empty_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_tree(child.pid) == set()
