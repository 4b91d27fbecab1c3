"""The test run's orphan guard: what a killed pytest process started does not outlive it."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import eventually

GUARD = Path(__file__).parents[2] / "orphan_guard.py"

# A parent (standing for a pytest worker) with a child and a grandchild (a farm's
# service and its Chromium); it prints their PIDs and waits to be killed.
PARENT = """
import subprocess, sys, time
sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
child = subprocess.Popen([sys.executable, "-c", f'''
import subprocess, sys, time
grandchild = subprocess.Popen({sleeper!r})
print(grandchild.pid, flush=True)
time.sleep(600)
'''], stdout=subprocess.PIPE, text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
time.sleep(600)
"""


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A process of this test, outside the parent's tree: the guard must leave it."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield process
    process.kill()
    process.wait()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_guard_kills_what_a_killed_process_started_and_nothing_else(
    bystander: subprocess.Popen[bytes],
) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        child, grandchild = (int(pid) for pid in parent.stdout.readline().split())
        guard = subprocess.Popen(
            [sys.executable, str(GUARD), str(parent.pid)], stdout=subprocess.PIPE, text=True
        )
        assert guard.stdout is not None
        try:
            # After its first look at the parent's tree.
            assert guard.stdout.readline() == f"watching {parent.pid}\n"
            os.kill(parent.pid, signal.SIGKILL)
            parent.wait()

            eventually(
                lambda: gone(child) and gone(grandchild),
                within=10,
                message="the killed parent's child and grandchild still run",
            )
            assert guard.wait(timeout=10) == 0
            assert bystander.poll() is None
        finally:
            for pid in (child, grandchild):
                if not gone(pid):
                    os.kill(pid, signal.SIGKILL)
            guard.kill()
            guard.communicate()
