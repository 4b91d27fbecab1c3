"""The snapshot action passes validation as a task's action and as a session command's."""

import pytest

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from farm_scheduler.sessions.validation import validate_command
from farm_scheduler.validation import validate_spec


def test_a_snapshot_is_a_tasks_one_action() -> None:
    spec = tasks_pb2.TaskSpec(url="https://example.com", snapshot=tasks_pb2.SnapshotOptions())
    checked = validate_spec(spec, max_attempts_cap=3, default_timeout_ms=30000)
    assert checked.HasField("snapshot")


def test_a_session_command_may_take_a_snapshot_after_its_steps() -> None:
    command = sessions_pb2.SessionCommand(
        steps=[tasks_pb2.Step(click="aria-ref=e5")], snapshot=tasks_pb2.SnapshotOptions()
    )
    checked = validate_command(command, default_timeout_ms=30000)
    assert checked.HasField("snapshot")
    assert checked.steps[0].click == "aria-ref=e5"


def test_a_snapshot_with_another_action_is_refused() -> None:
    command = sessions_pb2.SessionCommand(
        snapshot=tasks_pb2.SnapshotOptions(), content=tasks_pb2.ContentOptions()
    )
    with pytest.raises(InvalidArgument, match="command: at most one action"):
        validate_command(command, default_timeout_ms=30000)
