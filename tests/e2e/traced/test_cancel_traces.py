"""A cancelled task's trace shows its cancel: a `task.cancel` span linked to the cancelling call.

On the package's traced farm (conftest.py), reading the sink's files. The tasks wait
in a region no agent serves, so nothing but the cancel ends them.
"""

import pytest

from farm_cli.launcher.farm import LocalFarm
from farm_cli.traces.spans import SpanRecord
from farm_core.trace_context import TRACEPARENT, new_traceparent, trace_id_of
from tests.e2e.conftest import Client, unique_label
from tests.e2e.traced.kept_traces import Trace, kept
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral, pytest.mark.slow]

NOWHERE = "cancel-traces-nowhere"
CANCEL_TASK = "/farm.tasks.v1.TaskService/CancelTask"
CANCEL_TASKS = "/farm.tasks.v1.TaskService/CancelTasks"


def queued_task(client: Client, site: Site, creator: str) -> dict[str, object]:
    """A task created with the `traceparent` `creator`, waiting where no agent serves."""
    spec = {"url": site.url("/page"), "content": {}, "region": NOWHERE, "labels": unique_label()}
    response = client.http.post("/v1/tasks", json=spec, headers={TRACEPARENT: creator})
    assert response.status_code == 200, response.text
    return dict(response.json())


def task_cancel(trace: Trace, task_id: str) -> SpanRecord:
    """The one `task.cancel` span of `task_id` in `trace`."""
    (found,) = [s for s in trace.named("task.cancel") if s.attributes["farm.task_id"] == task_id]
    return found


def test_a_cancelled_task_s_trace_holds_its_cancel_linked_to_the_cancelling_call(
    traced_farm: LocalFarm, client: Client, site: Site
) -> None:
    task = queued_task(client, site, new_traceparent())
    canceller = new_traceparent()
    response = client.http.post(f"/v1/tasks/{task['id']}:cancel", headers={TRACEPARENT: canceller})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "TASK_STATUS_CANCELLED"

    trace = kept(traced_farm, str(task["traceId"]), "task.cancel")
    cancel = task_cancel(trace, str(task["id"]))
    assert cancel.service == "farm-scheduler"
    # Under the creating call, as the task's other scheduler spans (task.publish) are.
    create = trace.one("/farm.tasks.v1.TaskService/CreateTask", "farm-scheduler")
    assert cancel.parentSpanId == create.spanId
    # Its link is the scheduler's CancelTask call, in the canceller's own trace: who
    # cancelled (that trace, its audit record) and when (the span's time, within it).
    call = kept(traced_farm, trace_id_of(canceller), CANCEL_TASK).one(CANCEL_TASK, "farm-scheduler")
    assert cancel.links == [(call.traceId, call.spanId)]
    assert call.startTimeUnixNano <= cancel.startTimeUnixNano <= call.endTimeUnixNano


def test_each_task_a_batch_cancel_ends_holds_its_cancel_linked_to_the_one_call(
    traced_farm: LocalFarm, client: Client, site: Site
) -> None:
    tasks = [queued_task(client, site, new_traceparent()) for _ in range(2)]
    canceller = new_traceparent()
    response = client.http.post(
        "/v1/tasks:batchCancel",
        json={"ids": [task["id"] for task in tasks]},
        headers={TRACEPARENT: canceller},
    )
    assert response.status_code == 200, response.text
    assert [task["status"] for task in response.json()["tasks"]] == ["TASK_STATUS_CANCELLED"] * 2

    calls = kept(traced_farm, trace_id_of(canceller), CANCEL_TASKS)
    call = calls.one(CANCEL_TASKS, "farm-scheduler")
    for task in tasks:
        trace = kept(traced_farm, str(task["traceId"]), "task.cancel")
        cancel = task_cancel(trace, str(task["id"]))
        create = trace.one("/farm.tasks.v1.TaskService/CreateTask", "farm-scheduler")
        assert cancel.parentSpanId == create.spanId
        assert cancel.links == [(call.traceId, call.spanId)]
