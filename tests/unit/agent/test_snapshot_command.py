"""A session command's snapshot action reaches the runner like the other actions."""

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.sessions.commands import command_spec


def test_a_session_command_carries_its_snapshot_action_to_the_runner() -> None:
    command = sessions_pb2.SessionCommand(snapshot=tasks_pb2.SnapshotOptions())
    assert command_spec(command).HasField("snapshot")
