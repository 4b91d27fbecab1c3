"""A session's commands and its close wait as long as the farm may take, not a plain call's time."""

import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

import browserfarm
from farm.sessions.v1 import sessions_pb2, sessions_pb2_grpc
from farm.tasks.v1 import tasks_pb2
from farm_core.free_ports import free_port

SLOW_SECONDS = 1.5
"""How long the fake takes to answer a call: longer than the client's timeout."""
CLIENT_TIMEOUT = 0.5


class SlowSessions(sessions_pb2_grpc.SessionServiceServicer):
    """Opens (waiting for a place), runs a command and closes (a recording being stored) slowly."""

    def __init__(self) -> None:
        self.answered = threading.Event()

    def CreateSession(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.answered.wait(SLOW_SECONDS)
        return sessions_pb2.Session(id="ses_slow", state=sessions_pb2.SESSION_STATE_ACTIVE)

    def RunSessionCommand(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.answered.wait(SLOW_SECONDS)
        return tasks_pb2.TaskResult(title="slow")

    def CloseSession(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.answered.wait(SLOW_SECONDS)
        return sessions_pb2.Session(id=request.id, state=sessions_pb2.SESSION_STATE_CLOSED)


@pytest.fixture
def slow_farm() -> Iterator[str]:
    """The URL of an in-process SessionService that answers every call slowly."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    # A partial fake: the generated base answers UNIMPLEMENTED for the RPCs it leaves out.
    sessions_pb2_grpc.add_SessionServiceServicer_to_server(SlowSessions(), server)  # type: ignore[abstract]
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop(grace=None)


def test_an_open_a_command_and_a_close_outlast_the_clients_plain_call_timeout(
    slow_farm: str,
) -> None:
    # The open too: the farm may wait minutes for a place, and gives a clear answer past them.
    with (
        browserfarm.Client(slow_farm, "bf_test", timeout=CLIENT_TIMEOUT) as client,
        client.session() as session,
    ):
        # Within the command's own limit (the farm's 30 s default), past the client's timeout.
        assert session.run({"steps": [{"waitFor": "#late"}]}).title == "slow"
        assert session.run({"timeoutMs": 2000}).title == "slow"
        closed = session.close()
    assert closed is not None and not closed.active
