"""What a batch sends: WorkItems and response Tasks built from parts its tasks share."""

import dataclasses
import datetime as dt
from typing import Any

import pytest

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.quotas import TenantQuotas
from farm_scheduler.records import TaskRecord, add_tasks, new_record
from farm_scheduler.work_messages import shared_part, task_payload, work_item
from tests.helpers import task_spec
from tests.unit.scheduler.conftest import validate

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)


def record(**fields: Any) -> TaskRecord:
    spec = validate(task_spec(labels={"team": "a"}, priority="PRIORITY_HIGH"))
    quotas = TenantQuotas(max_running_tasks=7, max_artifact_bytes=100)
    return dataclasses.replace(new_record("acme", spec, quotas, NOW, ""), **fields)


@pytest.mark.parametrize(
    "task",
    [record(), record(routed_region="eu-central", route_pending=True)],
    ids=["plain", "claimed while it may fall back"],
)
def test_payload_reads_as_the_whole_work_item(task: TaskRecord) -> None:
    payload = task_payload(task, "the-grant", shared_part(task))

    assert queue_pb2.WorkItem.FromString(payload) == work_item(task, "the-grant")


def test_tasks_of_one_spec_share_the_part_and_keep_their_own_ids() -> None:
    first, second = record(), record()
    second = dataclasses.replace(second, spec=first.spec)
    shared = shared_part(first)

    items = [
        queue_pb2.WorkItem.FromString(task_payload(task, f"grant-{task.id}", shared))
        for task in (first, second)
    ]

    assert [item.task_id for item in items] == [first.id, second.id]
    assert [item.upload_grant for item in items] == [f"grant-{first.id}", f"grant-{second.id}"]
    assert items[1] == work_item(second, f"grant-{second.id}")


def test_a_batchs_response_tasks_read_as_each_records_own_view() -> None:
    first = record()
    alike = [dataclasses.replace(record(), spec=first.spec) for _ in range(3)]
    other_region = dataclasses.replace(alike[0], id="other", routed_region="eu-central")
    cached = dataclasses.replace(
        record(), spec=first.spec, cached=True, state=dataclasses.replace(first.state, attempts=2)
    )
    records = [first, *alike, other_region, cached, first]
    response = tasks_pb2.CreateTasksResponse()

    add_tasks(response.tasks, records)

    assert list(response.tasks) == [task.to_proto() for task in records]
    assert len({task.id for task in response.tasks}) == len(records) - 1
