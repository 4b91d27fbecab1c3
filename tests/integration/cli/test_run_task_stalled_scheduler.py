"""`farm task run` against a stalled scheduler: it waits the task's own time, then says so.

A real farm (its services, no agent), whose scheduler is stopped with SIGSTOP by its
PID: the edge takes the call and the scheduler answers nothing. Before, the command
waited for the edge's RunTask route, 330 s, whatever the task.
"""

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.infra import binary
from tests.integration.cli.conftest import ROOT, pid_files

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Outside infrastructure or keys the command must not pick up from the test's environment.
OUTSIDE = ("FARM_URL", "FARM_API_KEY", "NATS_URL", "S3_ENDPOINT", "DATABASE_URL")


@pytest.fixture
def farm(infra_config: FarmConfig) -> Iterator[LocalFarm]:
    """A running farm's services, no agent: a task made is never run."""
    config = replace(infra_config, start_services=True, agents=0, service_timeout=90)
    with LocalFarm(config) as running:
        yield running


def test_run_task_on_a_stalled_scheduler_ends_at_the_tasks_own_time_saying_so(
    farm: LocalFarm, farm_home: Path
) -> None:
    scheduler = pid_files(farm_home)["scheduler"]
    env = {k: v for k, v in os.environ.items() if k not in OUTSIDE}
    os.kill(scheduler, signal.SIGSTOP)
    try:
        # A deadline 2 s ahead: the scheduler would answer 5 s past it; the command
        # gives up the margin set (1 s) after that. The subprocess's limit only tells a
        # command that waits for the edge's 330 s.
        run = subprocess.run(
            [binary("farm"), "task", "run", "http://127.0.0.1:9/", "--deadline", "+2"],
            cwd=ROOT,
            env={**env, "FARM_HOME": str(farm_home), "FARM_RUN_ANSWER_MARGIN_SECONDS": "1"},
            capture_output=True,
            text=True,
            timeout=150,
            check=False,
        )
    finally:
        os.kill(scheduler, signal.SIGCONT)

    assert run.returncode == 1, run.stderr
    # 2 s to the deadline (a little less by the time the wait is worked out), 5 s, 1 s.
    assert re.search(
        r"error: DEADLINE_EXCEEDED: the farm did not answer RunTask within [78] s, "
        r"the task's own time \(.*\) and 1 s more",
        run.stderr,
    ), run.stderr
    assert "the scheduler may be stalled or overloaded" in run.stderr
    assert "Traceback" not in run.stderr
