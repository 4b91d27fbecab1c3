"""The agent's labelled counters serve their series before the first event."""

from prometheus_client import REGISTRY

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
