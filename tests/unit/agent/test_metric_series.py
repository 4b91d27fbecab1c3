"""The agent's labelled counters serve their series before the first event."""

from prometheus_client import REGISTRY

from farm_agent import metrics
from farm_agent.work.delivery import DeliveryOutcome
from farm_core.task_errors import ErrorCode


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
