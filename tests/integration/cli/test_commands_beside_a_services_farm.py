"""Commands beside one real farm of services (no agent), started once for the module.

`farm db` on the farm's FARM_HOME: it warns, and migrate refuses without --force; its
services' databases are the default SQLite files there. `farm task run` against its
scheduler stopped with SIGSTOP by its PID: the edge takes the call and the scheduler
answers nothing; it waits the task's own time, then says so (before, it waited for
the edge's RunTask route, 330 s, whatever the task). Neither changes the farm: the
tables stay current, and the scheduler runs on once sent SIGCONT.
"""

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.infra import binary
from farm_cli.main import main
from tests.conftest import S3Server
from tests.integration.cli.conftest import ROOT, infra_only, on_session_s3, pid_files

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DATABASE_URLS = [
    f"{prefix}DATABASE_URL" for prefix in ("", "FARM_STORAGE_", "FARM_AUTH_", "FARM_SCHEDULER_")
]
# Outside infrastructure or keys `farm task run` must not pick up from the test's environment.
OUTSIDE = ("FARM_URL", "FARM_API_KEY", "NATS_URL", "S3_ENDPOINT", "DATABASE_URL")


@pytest.fixture(scope="module")
def services_home(tmp_path_factory: pytest.TempPathFactory, seaweedfs: S3Server) -> Iterator[Path]:
    """The FARM_HOME of a running farm's services (no agent: a task made is never run).

    On the session's SeaweedFS: neither command reaches S3.
    """
    home = tmp_path_factory.mktemp("farm-home")
    config = replace(
        on_session_s3(infra_only(home), seaweedfs),
        start_services=True,
        agents=0,
        service_timeout=90,
    )
    with pytest.MonkeyPatch.context() as environment:
        # Its services use the default SQLite files under `home`, as `farm db` does.
        for name in DATABASE_URLS:
            environment.delenv(name, raising=False)
        with LocalFarm(config):
            yield home


@pytest.fixture
def farm_home(services_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The running farm's FARM_HOME, which the `farm db` command uses too."""
    monkeypatch.setenv("FARM_HOME", str(services_home))
    for name in DATABASE_URLS:
        monkeypatch.delenv(name, raising=False)
    return services_home


def farm_db(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, Any, str]:
    """Runs `farm db ... --json`: its exit code, its JSON and its stderr."""
    code = main(["db", *words, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else None, err


def test_db_commands_on_a_running_farms_tables_warn_and_migrate_needs_force(
    farm_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pids = pid_files(farm_home)
    users = f"auth (PID {pids['auth']}), scheduler (PID {pids['scheduler']}), " + (
        f"storage (PID {pids['storage']})"
    )
    in_use = f"the farm running on FARM_HOME {farm_home} uses these tables: {users}"

    code, versions, said = farm_db(capsys, "status")
    assert code == 0
    assert f"warning: {in_use}" in said
    assert {each["state"] for each in versions} == {"current"}

    code, migrated, said = farm_db(capsys, "migrate")
    assert code == 1
    assert migrated is None
    assert in_use in said
    assert "stop the farm first (`farm down`), or pass --force" in said

    code, migrated, said = farm_db(capsys, "migrate", "--force")
    assert code == 0, said
    assert [each["state"] for each in migrated] == ["current"] * 3


def test_db_commands_on_another_database_than_the_running_farms_say_nothing_of_it(
    farm_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Same FARM_HOME, but the scheduler's tables the command works on are elsewhere.
    monkeypatch.setenv("FARM_SCHEDULER_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")

    code, versions, said = farm_db(capsys, "status", "--service", "scheduler")
    assert code == 0
    assert versions[0]["state"] == "empty"
    assert "warning" not in said

    code, migrated, said = farm_db(capsys, "migrate", "--service", "scheduler")
    assert code == 0, said
    assert migrated[0]["state"] == "current"


def test_run_task_on_a_stalled_scheduler_ends_at_the_tasks_own_time_saying_so(
    farm_home: Path,
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
