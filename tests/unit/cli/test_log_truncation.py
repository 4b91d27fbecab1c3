"""A farm process's log may be truncated under it (logrotate's copytruncate), as operations.md says.

Every process writes to its log through the descriptor the launcher opened for
appending: after a truncation its next line goes to the start of the emptied file,
not past a hole of NUL bytes as long as what was cut.
"""

import sys
import time
from pathlib import Path

from farm_cli.launcher.processes import ManagedProcess, ProcessSpec

# Writes a line, waits for the test to cut its log and say so, then writes another.
SCRIPT = """
import pathlib, sys, time
print("before the cut " * 20, flush=True)
go = pathlib.Path(sys.argv[1])
while not go.exists():
    time.sleep(0.01)
print("after the cut", flush=True)
"""


def wait_for(condition: object, what: str) -> None:
    """Polls `condition` (a callable) until it is true; fails after a minute."""
    assert callable(condition)
    for _ in range(6000):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"never {what}")


def test_a_log_truncated_under_a_running_process_takes_its_next_lines_from_the_start(
    tmp_path: Path,
) -> None:
    go = tmp_path / "go"
    process = ManagedProcess(
        ProcessSpec("writer", [sys.executable, "-c", SCRIPT, str(go)]),
        tmp_path / "logs",
        tmp_path / "run",
    )
    process.start()
    try:
        wait_for(lambda: process.log_path.read_bytes().endswith(b"\n"), "wrote its first line")
        with process.log_path.open("r+b") as log:
            log.truncate(0)
        go.touch()
        wait_for(lambda: process.exit_code() is not None, "ended")
    finally:
        process.stop()

    assert process.log_path.read_bytes() == b"after the cut\n"
