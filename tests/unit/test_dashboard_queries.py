"""Every query of the Grafana dashboards is PromQL that Prometheus parses.

tests/e2e/test_observe.py holds the metric names they read to what the farm serves;
here promtool parses each query, as a recording rule of a throwaway rule file (with
Grafana's variables given values), so a dashboard cannot ship a panel that only says
"parse error".
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from farm_cli.launcher.config import find_project_root

ROOT = find_project_root(Path(__file__).parent)
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
PROMTOOL = shutil.which("promtool")
# Values for the dashboards' variables, as Grafana would put them in.
VARIABLES = {"$__rate_interval": "1m", "$agent": ".*"}

pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed: `make observe-deps` installs it"
)


def dashboard_queries() -> list[tuple[str, str]]:
    """(board: panel, expression) of every target of every dashboard."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            for target in panel.get("targets", []):
                expression = target["expr"]
                for variable, value in VARIABLES.items():
                    expression = expression.replace(variable, value)
                found.append((f"{path.name}: {panel['title']}", expression))
    return found


def check_as_rules(
    queries: list[tuple[str, str]], folder: Path
) -> subprocess.CompletedProcess[str]:
    """promtool's check of `queries` written as the recording rules of one file."""
    rules = [
        {"record": f"dashboard_query_{number}", "expr": expression}
        for number, (_, expression) in enumerate(queries)
    ]
    path = folder / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) > 20
    unresolved = [where for where, expression in queries if "$" in expression]
    assert not unresolved, f"a variable without a value here: {unresolved}"
    checked = check_as_rules(queries, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_query_that_does_not_parse_is_found(tmp_path: Path) -> None:
    checked = check_as_rules([("broken", "sum by (kind (rate(x[1m]))")], tmp_path)
    assert checked.returncode != 0
