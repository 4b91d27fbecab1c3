"""The agent's labelled counters serve their series before the first event."""

import subprocess
import sys
from pathlib import Path

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from farm_agent import metrics
from farm_agent.work.delivery import DeliveryOutcome
from farm_core.task_errors import ErrorCode

METRICS_DOC = Path(__file__).parents[3] / "docs" / "metrics.md"
WAIT_REASONS: tuple[str, ...] = (
    "breaker_open",
    "host_limit",
    "tenant_limit",
    "draining",
    "no_place",
)
WAIT_REASONS += ("route_unknown", "held_elsewhere")
BLOCK_REASONS: tuple[str, ...] = ("scheme", "farm_service", "metadata", "loopback", "unspecified")
BLOCK_REASONS += ("link_local", "private", "multicast", "reserved")


def test_the_task_counters_serve_every_status_and_code_before_any_task() -> None:
    # The public API promises agent_tasks_total and agent_errors_total among the
    # metrics Prometheus scrapes: a fresh agent must serve them, not only after a failure.
    unserved = [
        f"agent_tasks_total{{status={outcome.value}}}"
        for outcome in DeliveryOutcome
        if REGISTRY.get_sample_value("agent_tasks_total", {"status": outcome.value}) is None
    ] + [
        f"agent_errors_total{{code={code.value}}}"
        for code in ErrorCode
        if REGISTRY.get_sample_value("agent_errors_total", {"code": code.value}) is None
    ]
    assert not unserved, f"not served before the first event: {unserved}"


def test_agent_info_of_an_agent_without_a_region_names_the_region_any() -> None:
    # docs/metrics.md: `region` is the operator's region, `any` for agents without one,
    # as farm_agents says of the same agent.
    metrics.watch_work("agent-info-test", "", "0.0.0", lambda: 0, lambda: 1, lambda: 0)
    info = {"id": "agent-info-test", "version": "0.0.0"}
    assert REGISTRY.get_sample_value("agent_info", {**info, "region": "any"}) == 1
    assert REGISTRY.get_sample_value("agent_info", {**info, "region": ""}) is None
    metrics.watch_work("agent-info-eu", "eu-central", "0.0.0", lambda: 0, lambda: 1, lambda: 0)
    eu = {"id": "agent-info-eu", "region": "eu-central", "version": "0.0.0"}
    assert REGISTRY.get_sample_value("agent_info", eu) == 1


# Each counter of the agent with a fixed set of label values, the label, and the values
# docs/metrics.md names for it.
FIXED_SETS = {
    "agent_task_waits_total": ("reason", WAIT_REASONS),
    "agent_circuit_transitions_total": ("state", ("closed", "half_open", "open")),
    "agent_page_events_total": ("kind", ("dialog", "popup", "download", "crash")),
    "agent_browser_probes_total": ("outcome", ("passed", "failed")),
    "agent_warm_context_uses_total": (
        "outcome",
        ("reused", "opened", "fresh", "trimmed", "memory", "reset_failed", "failed_task"),
    ),
    "farm_agent_blocked_requests_total": (
        "reason",
        BLOCK_REASONS,
    ),
}
# What a fresh agent process serves once its entry point is imported, before any work.
FRESH_AGENT = (
    "import farm_agent.__main__\n"
    "from prometheus_client import REGISTRY, generate_latest\n"
    "print(generate_latest(REGISTRY).decode())\n"
)


def test_a_fresh_agent_serves_every_value_of_its_fixed_set_counters_before_any_event() -> None:
    # The dashboards rate these by their label: a series that appears at its first
    # event has no earlier sample, so that event would never show in a rate.
    served = subprocess.run(
        [sys.executable, "-c", FRESH_AGENT], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    samples = {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(served)
        for sample in family.samples
    }
    documented = METRICS_DOC.read_text(encoding="utf-8")
    unserved = []
    for metric, (label, values) in FIXED_SETS.items():
        row = next(line for line in documented.splitlines() if line.startswith(f"| `{metric}` |"))
        for value in values:
            assert f"`{value}`" in row, f"docs/metrics.md's {metric} does not name {value}"
            if (metric, ((label, value),)) not in samples:
                unserved.append(f"{metric}{{{label}={value}}}")
    assert not unserved, f"a fresh agent does not serve: {unserved}"
