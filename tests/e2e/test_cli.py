"""The `farm` command against the real farm, as a user runs it."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import ROOT, png_size
from tests.pages import Site

pytestmark = pytest.mark.e2e

FARM = str(ROOT / ".venv" / "bin" / "farm")


def farm_command(
    farm: LocalFarm, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs `farm ARGS` against the test farm with `key` (default: its admin key)."""
    environment = {
        **os.environ,
        "FARM_URL": farm.envoy_url.removeprefix("http://"),
        "FARM_API_KEY": key or farm.admin_key,
    }
    return subprocess.run(
        [FARM, *args], capture_output=True, text=True, env=environment, timeout=120, check=False
    )


def test_task_run_then_artifact_get_writes_the_png(
    farm: LocalFarm, site: Site, tmp_path: Path
) -> None:
    ran = farm_command(farm, "task", "run", site.url("/page"), "--viewport", "600x400")
    assert ran.returncode == 0, ran.stderr
    task = json.loads(ran.stdout)
    assert task["status"] == "TASK_STATUS_SUCCEEDED"

    output = tmp_path / "page.png"
    got = farm_command(
        farm, "artifact", "get", task["result"]["artifacts"][0]["id"], "-o", str(output)
    )

    assert got.returncode == 0, got.stderr
    assert png_size(output.read_bytes()) == (600, 400)


def test_task_list_finds_a_created_task_by_label(farm: LocalFarm, site: Site) -> None:
    created = farm_command(farm, "task", "create", site.url("/page"), "--label", "cli=yes")
    assert created.returncode == 0, created.stderr
    task_id = json.loads(created.stdout)["id"]

    listed = farm_command(farm, "task", "list", "--label", "cli=yes")

    assert listed.returncode == 0, listed.stderr
    assert task_id in listed.stdout


def test_an_error_is_one_readable_line_and_exit_code_1(farm: LocalFarm) -> None:
    result = farm_command(farm, "task", "get", "0" * 32)

    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: NOT_FOUND:")


def test_a_session_from_the_command_line_keeps_its_page_between_commands(
    farm: LocalFarm, site: Site
) -> None:
    created = farm_command(farm, "session", "create", "--viewport", "800x600", "--label", "cli=1")
    assert created.returncode == 0, created.stderr
    session = json.loads(created.stdout)
    assert session["cdpUrl"].endswith(f"/v1/sessions/{session['id']}/cdp")
    try:
        filled = farm_command(
            farm, "session", "run", session["id"], site.url("/form"), "--fill", "#q=from the CLI"
        )
        assert filled.returncode == 0, filled.stderr
        assert json.loads(filled.stdout)["title"] == "Form"
        read = farm_command(
            farm, "session", "run", session["id"], "--click", "#go", "--extract", "out=#out"
        )
        assert read.returncode == 0, read.stderr
        assert json.loads(read.stdout)["json"] == {"out": "You asked: from the CLI"}
        listed = farm_command(farm, "session", "list", "--state", "active", "--all")
        assert session["id"] in listed.stdout
        token = farm_command(farm, "session", "view-token", session["id"])
        assert json.loads(token.stdout)["url"].startswith(session["liveUrl"] + "?token=")
    finally:
        closed = farm_command(farm, "session", "close", session["id"])
    assert closed.returncode == 0, closed.stderr
    assert json.loads(closed.stdout)["closeReason"] == "CLOSED_BY_USER"
    refused = farm_command(farm, "session", "run", session["id"], "--screenshot")
    assert refused.returncode == 1
    assert "closed (CLOSED_BY_USER)" in refused.stderr
