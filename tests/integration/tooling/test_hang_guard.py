"""A test stuck where pytest-timeout cannot reach ends its process, saying where it hung."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[3]
PYPROJECT = ROOT / "pyproject.toml"

# Blocked with SIGALRM held back, as a thread stuck in C is: pytest-timeout's signal
# handler never gets to run.
STUCK_TEST = """
import signal, time

def test_stuck_out_of_pytest_timeouts_reach():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(60)
"""


def test_the_watchdog_outlasts_pytest_timeout() -> None:
    options = tomllib.loads(PYPROJECT.read_text())["tool"]["pytest"]["ini_options"]
    assert options["faulthandler_timeout"] > options["timeout"]


def test_a_test_stuck_past_pytest_timeout_ends_its_process_with_every_stack(
    tmp_path: Path,
) -> None:
    stuck = tmp_path / "test_stuck.py"
    stuck.write_text(STUCK_TEST)

    # The project's settings, with both limits shortened.
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", str(stuck), "-q", "-p", "no:cacheprovider"),
            *("-c", str(PYPROJECT), "-o", "timeout=1", "-o", "faulthandler_timeout=2"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
    )

    assert run.returncode != 0
    assert "Timeout (0:00:02)!" in run.stderr
    assert "test_stuck_out_of_pytest_timeouts_reach" in run.stderr
