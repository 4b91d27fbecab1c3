"""`farm db` beside a running farm: it warns, and migrate refuses without --force.

A real farm (`LocalFarm` with its services, no agents) on the FARM_HOME the command
uses; its services' databases are the default SQLite files there.
"""

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.farm import LocalFarm
from farm_cli.main import main
from tests.integration.cli.conftest import pid_files

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def farm(
    infra_config: FarmConfig, farm_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalFarm]:
    """A running farm's services on `farm_home`, which the `farm db` command uses too."""
    monkeypatch.setenv("FARM_HOME", str(farm_home))
    for prefix in ("", "FARM_STORAGE_", "FARM_AUTH_", "FARM_SCHEDULER_"):
        monkeypatch.delenv(f"{prefix}DATABASE_URL", raising=False)
    config = replace(infra_config, start_services=True, agents=0, service_timeout=90)
    with LocalFarm(config) as running:
        yield running


def farm_db(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, Any, str]:
    """Runs `farm db ... --json`: its exit code, its JSON and its stderr."""
    code = main(["db", *words, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else None, err


def test_db_commands_on_a_running_farms_tables_warn_and_migrate_needs_force(
    farm: LocalFarm, farm_home: Path, capsys: pytest.CaptureFixture[str]
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
    farm: LocalFarm,
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
