"""Looking at a running farm: its metrics against docs/metrics.md, the dashboards' and alerts'
queries against what is served, `farm status`, JSON logs with task ids, and Prometheus."""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.cli_calls import farm_command
from tests.e2e.conftest import ROOT, Client
from tests.helpers import eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

METRICS_DOC = ROOT / "docs" / "metrics.md"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus" / "rules"
# The client library's own metrics, served by every Python process.
STANDARD_PREFIXES = ("process_", "python_")
# Series Prometheus makes itself rather than scrapes.
SYNTHETIC = {"up", "ALERTS", "ALERTS_FOR_STATE"}
# Sections of docs/metrics.md and the processes that serve their metrics.
SECTIONS = {
    "Every service (auth, storage, scheduler, agent)": ("auth", "storage", "scheduler", "agent"),
    "auth": ("auth",),
    "storage": ("storage",),
    "scheduler: tasks": ("scheduler",),
    "scheduler: callbacks": ("scheduler",),
    "scheduler: sessions": ("scheduler",),
    "scheduler: the fleet": ("scheduler",),
    "agent": ("agent",),
    "mcp": ("mcp",),
}


class Served:
    """What one process's /metrics serves: each metric's type and the label names seen."""

    def __init__(self, text: str) -> None:
        self.types: dict[str, str] = {}
        self.labels: dict[str, set[str]] = {}
        self.sample_names: set[str] = set()
        for family in text_string_to_metric_families(text):
            name = f"{family.name}_total" if family.type == "counter" else family.name
            if name.startswith(STANDARD_PREFIXES):
                continue
            self.types[name] = family.type
            for sample in family.samples:
                self.sample_names.add(sample.name)
                self.labels.setdefault(name, set()).update(set(sample.labels) - {"le"})


def scrape(farm: LocalFarm) -> dict[str, Served]:
    """Every service's and agent's /metrics, by process kind (agents merged)."""
    ports = farm.config.ports
    addresses = {
        "auth": [ports.auth_metrics],
        "storage": [ports.storage_metrics],
        "scheduler": [ports.scheduler_metrics],
        "agent": [ports.agent_metrics(i) for i in range(1, farm.config.agents + 1)],
        "mcp": [ports.mcp_metrics],
        "console": [ports.console_metrics],
    }
    served = {}
    for kind, kind_ports in addresses.items():
        texts = [
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text for port in kind_ports
        ]
        served[kind] = Served("\n".join(texts))
    return served


def documented() -> Iterator[tuple[str, str, str, set[str]]]:
    """(section, metric, type, labels) of every row under "Every metric" in docs/metrics.md."""
    text = METRICS_DOC.read_text().split("## Every metric", 1)[1].split("\n## ", 1)[0]
    section = ""
    for line in text.splitlines():
        if line.startswith("### "):
            section = line.removeprefix("### ").strip()
        row = re.match(r"\| `([a-z0-9_]+)` \| (\w+) \| ([^|]*) \|", line)
        if row:
            labels = set(re.findall(r"`([a-z_]+)`", row.group(3)))
            yield section, row.group(1), row.group(2), labels


def test_every_documented_metric_is_served_as_documented_and_nothing_else(
    farm: LocalFarm, admin: Client, site: Site
) -> None:
    # One task, so that the labelled metrics have series whose labels can be checked.
    assert admin.run({"url": site.url("/page"), "screenshot": {}})["status"].endswith("SUCCEEDED")
    served = scrape(farm)
    rows = list(documented())
    assert {section for section, *_ in rows} == set(SECTIONS)

    for section, name, kind, labels in rows:
        for process in SECTIONS[section]:
            assert served[process].types.get(name) == kind, f"{process} does not serve {name}"
            seen = served[process].labels.get(name)
            if seen:
                assert seen == labels, f"{name} on {process}: labels {seen}, documented {labels}"
    listed = {name for _, name, _, _ in rows}
    undocumented = {
        f"{process}: {name}"
        for process, metrics in served.items()
        for name in metrics.types
        if name not in listed
    }
    assert undocumented == set(), "served but not in docs/metrics.md"


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana label_values query) reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expression)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,[^)]*\)", r"\1", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", text):
        word = match.group(1)
        if word not in {"and", "or", "unless", "bool", "offset", "inf", "nan", "le"}:
            names.add(word)
    return names


def test_metric_names_are_read_from_promql() -> None:
    quantile = (
        "histogram_quantile(0.95, sum by (method, le) (rate("
        'farm_grpc_server_handling_seconds_bucket{method=~"/a/(B|C)"}[$__rate_interval])))'
    )
    assert metric_names(quantile) == {"farm_grpc_server_handling_seconds_bucket"}
    assert metric_names("agent_memory_usage_bytes / agent_machine_memory_bytes > 0.85") == {
        "agent_memory_usage_bytes",
        "agent_machine_memory_bytes",
    }
    assert metric_names("label_values(agent_info, agent)") == {"agent_info"}
    assert metric_names('time() - max(farm_x{a="b"}) > 120') == {"farm_x"}


def queries() -> Iterator[tuple[str, str]]:
    """(where, expression) of every dashboard query and alert rule."""
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']}", target["expr"]
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                yield f"{path.name}: ${variable['name']}", variable["query"]
    for path in sorted(RULES.glob("*.rules.yml")):
        exprs = re.findall(r"expr: (\|\n(?:\s{10}.*\n)+|.*)", path.read_text())
        for expr in exprs:
            yield path.name, expr.removeprefix("|")


def test_dashboards_and_alerts_name_only_metrics_the_farm_serves(farm: LocalFarm) -> None:
    served = set(SYNTHETIC)
    for metrics in scrape(farm).values():
        served |= set(metrics.types) | metrics.sample_names
    found = list(queries())
    assert len(found) > 40
    unknown = {
        f"{where}: {name}" for where, expression in found for name in metric_names(expression)
    } - {f"{where}: {name}" for where, expression in found for name in served}
    assert unknown == set()


# Labels Prometheus adds to every scraped series (`agent` and `autoscaled` from the
# scrape configuration of agents), and a histogram's bucket bound.
SCRAPE_LABELS = {"job", "instance", "agent", "autoscaled", "le"}


def selected_labels(expression: str) -> Iterator[tuple[str, str]]:
    """(metric, label) of each label matcher of each selector in a PromQL expression."""
    for selector in re.finditer(r"([a-zA-Z_:][\w:]*)\{([^}]*)\}", expression):
        for label in re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", selector.group(2)):
            yield selector.group(1), label


def test_dashboards_and_alerts_select_only_labels_their_metrics_have() -> None:
    # A matcher on a label its metric lacks selects nothing: the panel stays empty and
    # the alert never fires. docs/metrics.md's labels are the served ones (the test above).
    labels = {name: documented_labels for _, name, _, documented_labels in documented()}
    assert ("agent_tasks_total", "status") in set(
        selected_labels('rate(agent_tasks_total{status=~"a|b", agent=~"$agent"}[5m])')
    )
    unknown = set()
    for where, expression in queries():
        for metric, label in selected_labels(expression):
            family = re.sub(r"_(bucket|count|sum)$", "", metric)
            known = labels.get(metric, labels.get(family, set())) | SCRAPE_LABELS
            if metric not in SYNTHETIC and label not in known:
                unknown.add(f"{where}: {metric}{{{label}}}")
    assert unknown == set()


def test_farm_status_shows_the_agents_and_queues(
    farm: LocalFarm, admin: Client, site: Site
) -> None:
    admin.run({"url": site.url("/page"), "content": {}})
    shown = farm_command(farm, "status")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "Agents: 2 (2 ready, 0 draining, 0 lost)" in lines
    assert any(line.split()[:2] == ["agent-1", "any"] for line in lines)
    assert "Queues:" in lines

    as_json = farm_command(farm, "status", "--json")
    assert as_json.returncode == 0, as_json.stderr
    fleet = json.loads(as_json.stdout)
    assert [agent["id"] for agent in fleet["agents"]] == ["agent-1", "agent-2"]
    assert all(agent["version"] and agent["concurrency"] == 2 for agent in fleet["agents"])
    assert {(q["region"], q["priority"]) for q in fleet["queues"]} >= {("any", "PRIORITY_NORMAL")}
    assert int(fleet["tasks"]["succeeded"]) >= 1


def test_fleet_status_over_http(farm: LocalFarm, admin: Client) -> None:
    response = admin.http.get("/v1/fleetStatus", params={"windowMinutes": 5})
    assert response.status_code == 200, response.text
    assert response.json()["tasks"]["windowMinutes"] == 5


def test_every_log_line_of_a_task_names_it(farm: LocalFarm, admin: Client, site: Site) -> None:
    task = admin.run({"url": site.url("/page"), "screenshot": {}})
    task_id = task["id"]

    def lines_about_the_task() -> list[str] | None:
        found = [
            line
            for path in farm.log_dir.glob("agent-*.log")
            for line in path.read_text(errors="replace").splitlines()
            if task_id in line
        ]
        return found or None

    lines = eventually(lines_about_the_task, within=10, message="no agent logged the task")
    entries = [json.loads(line) for line in lines]
    assert all(entry["task_id"] == task_id for entry in entries)
    assert {entry["service"] for entry in entries} == {"agent"}
    assert all(
        {"time", "level", "logger", "message", "session_id", "trace_id"} <= set(e) for e in entries
    )


@pytest.fixture
def prometheus(farm: LocalFarm) -> str:
    if farm.prometheus_url is None:
        pytest.skip("prometheus is not installed (`make observe-deps`): the farm runs without it")
    return farm.prometheus_url


def test_prometheus_scrapes_every_process_with_the_rules_loaded(prometheus: str) -> None:
    def all_up() -> list[dict[str, object]] | None:
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]
        active = targets["activeTargets"]
        return active if active and all(t["health"] == "up" for t in active) else None

    active = eventually(all_up, within=60, interval=1, message="a target is not up")
    jobs = sorted({str(target["labels"]["job"]) for target in active})  # type: ignore[index]
    assert jobs == [
        "envoy",
        "farm-agent",
        "farm-auth",
        "farm-console",
        "farm-mcp",
        "farm-scheduler",
        "farm-storage",
        "seaweedfs",
    ]
    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    alerts = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"FarmAgentDown", "FarmNoAgentsInRegion", "FarmQueueAgeHigh"} <= alerts


def test_metrics_doc_is_where_the_readme_and_operations_point() -> None:
    assert "metrics.md" in (ROOT / "docs" / "operations.md").read_text()
    assert Path(METRICS_DOC).is_file()
