"""What the agent's resource gauges read of its process tree and its disk."""

import subprocess
import sys
import time
from pathlib import Path

import psutil

from farm_agent.metrics import TreeCpu, disk_percent, process_tree, tree_resident_bytes

# Burns 0.3 s of CPU, says so, then waits to be killed (so that its CPU can be read).
BURN = """
import sys, time
while time.process_time() < 0.3:
    pass
print("burnt", flush=True)
time.sleep(60)
"""


def test_a_busy_child_shows_as_cpu_use() -> None:
    cpu = TreeCpu()
    with subprocess.Popen([sys.executable, "-c", BURN], stdout=subprocess.PIPE) as child:
        used, elapsed = read_around_the_burn(cpu, child)
    # The child's CPU between the two readings, whatever else the machine was doing.
    cpu_seconds = used / 100 * (psutil.cpu_count() or 1) * elapsed
    assert cpu_seconds > 0.15


def read_around_the_burn(cpu: TreeCpu, child: "subprocess.Popen[bytes]") -> tuple[float, float]:
    """The tree's CPU percent over the child's burn, and the seconds it took."""
    try:
        assert child.pid in process_tree(psutil.Process().pid)
        cpu.percent()
        began = time.monotonic()
        assert child.stdout is not None and child.stdout.readline() == b"burnt\n"
        return cpu.percent(), time.monotonic() - began
    finally:
        child.kill()


def test_memory_counts_this_process_at_least() -> None:
    # Read the process first: it may grow between the two reads, never by a tenth.
    own = psutil.Process().memory_info().rss
    assert tree_resident_bytes() >= own * 0.9


def test_disk_use_is_read_from_the_nearest_existing_folder(tmp_path: Path) -> None:
    not_yet = tmp_path / "agents" / "agent-1"
    assert disk_percent(not_yet) == psutil.disk_usage(str(tmp_path)).percent
    assert 0.0 <= disk_percent(not_yet) <= 100.0


def test_a_gone_process_has_an_empty_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_tree(child.pid) == set()
