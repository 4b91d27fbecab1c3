"""What the bucket of ended tasks must say of a task an order was made for, by its state."""

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_scheduler.end_marks import end_mark


@pytest.mark.parametrize(
    ("status", "error_code", "mark"),
    [
        (tasks_pb2.TASK_STATUS_CANCELLED, "", "CANCELLED"),
        (tasks_pb2.TASK_STATUS_SUCCEEDED, "", "SUCCEEDED"),
        (tasks_pb2.TASK_STATUS_FAILED, "DEADLINE_EXCEEDED", "FAILED: DEADLINE_EXCEEDED"),
        (tasks_pb2.TASK_STATUS_FAILED, "ATTEMPTS_EXHAUSTED", "FAILED: ATTEMPTS_EXHAUSTED"),
    ],
)
def test_an_ended_task_is_marked_with_its_reason(
    status: tasks_pb2.TaskStatus.ValueType, error_code: str, mark: str
) -> None:
    assert end_mark(status, error_code) == mark


@pytest.mark.parametrize("status", [tasks_pb2.TASK_STATUS_QUEUED, tasks_pb2.TASK_STATUS_RUNNING])
def test_a_task_queued_or_running_again_is_not_marked(
    status: tasks_pb2.TaskStatus.ValueType,
) -> None:
    # Whatever error a row still holds: only an ended task is marked.
    assert end_mark(status, "ATTEMPTS_EXHAUSTED") == ""
