"""The alert rules load in Prometheus and fire when, and only when, their tests say."""

import shutil
import subprocess
from pathlib import Path

import pytest

from farm_cli.launcher.config import find_project_root

ROOT = find_project_root(Path(__file__).parent)
RULES = ROOT / "deploy" / "prometheus" / "rules"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tests"
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed: `make observe-deps` installs it"
)


def promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *arguments], capture_output=True, text=True, timeout=60, check=False
    )


def test_every_rule_file_is_valid() -> None:
    files = sorted(RULES.glob("*.rules.yml"))
    assert files
    checked = promtool("check", "rules", *map(str, files))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_rule_tests_pass() -> None:
    files = sorted(RULE_TESTS.glob("*.test.yml"))
    assert files
    tested = promtool("test", "rules", *map(str, files))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_test() -> None:
    alerts = {
        line.split(":", 1)[1].strip()
        for path in RULES.glob("*.rules.yml")
        for line in path.read_text().splitlines()
        if line.strip().startswith("- alert:")
    }
    tested = {
        line.split(":", 1)[1].strip()
        for path in RULE_TESTS.glob("*.test.yml")
        for line in path.read_text().splitlines()
        if line.strip().startswith("alertname:")
    }
    assert alerts - tested == set()
