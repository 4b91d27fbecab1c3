"""A task keeps its caller's trace even when the farm itself records no traces."""

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core.trace_context import new_traceparent, trace_id_of
from farm_core.tracing import tracing_enabled
from tests.helpers import task_spec
from tests.integration.scheduler.agent_side import RPC_TIMEOUT
from tests.integration.scheduler.conftest import Scheduler

pytestmark = pytest.mark.integration


async def test_an_untraced_farm_records_the_callers_trace_id(scheduler: Scheduler) -> None:
    assert not tracing_enabled()
    parent = new_traceparent()
    metadata = (*scheduler.auth(), ("traceparent", parent))

    created = await scheduler.create(metadata=metadata)
    batch = await scheduler.tasks.CreateTasks(
        tasks_pb2.CreateTasksRequest(requests=[task_spec()]), metadata=metadata, timeout=RPC_TIMEOUT
    )

    assert created.trace_id == trace_id_of(parent) != ""
    assert (await scheduler.get(created.id)).trace_id == trace_id_of(parent)
    assert [task.trace_id for task in batch.tasks] == [trace_id_of(parent)]


async def test_a_call_without_traceparent_leaves_the_trace_id_empty(scheduler: Scheduler) -> None:
    assert (await scheduler.create()).trace_id == ""
