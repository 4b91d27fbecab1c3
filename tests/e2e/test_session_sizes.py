"""Commands and results near one NATS message's size, through Envoy, to a real agent.

Envoy lets a body of up to 1 MiB through; the command then goes to the agent as one
NATS message, which must hold the order's envelope and headers too. A command that
does not fit is the caller's to fix (INVALID_ARGUMENT naming it), nothing is sent,
and the session goes on. One shared farm (tests/e2e/conftest.py).
"""

from typing import Any

import grpc
import pytest

from farm.sessions.v1 import sessions_pb2, sessions_pb2_grpc
from farm_cli.launcher.envoy import MAX_REQUEST_BYTES
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import FINAL_STATES, Client
from tests.e2e.sessions_api import Sessions
from tests.helpers import evaluate_steps, eventually
from tests.pages import Site

pytestmark = pytest.mark.e2e
# The session tests store nothing any session does not (a refused command, a result
# that is answered, not stored): database_neutral. The task's near-1 MiB result is
# stored in the scheduler's database, so that test runs on PostgreSQL too.

GRPC_FRAME_BYTES = 5
"""The length prefix gRPC puts before a message; Envoy counts it in the body."""


def request_of_bytes(session_id: str, size: int) -> sessions_pb2.RunSessionCommandRequest:
    """A RunSessionCommandRequest of exactly `size` bytes, of evaluate steps."""
    steps = evaluate_steps(size)
    request = sessions_pb2.RunSessionCommandRequest(
        id=session_id, command=sessions_pb2.SessionCommand(steps=steps)
    )
    last = steps[-1].evaluate
    surplus = request.ByteSize() - size
    request.command.steps[-1].evaluate = last[: len(last) - surplus]
    assert request.ByteSize() == size
    return request


@pytest.mark.database_neutral
def test_a_command_that_passes_the_edge_but_not_one_agent_message_is_invalid_argument(
    farm: LocalFarm, channel: grpc.Channel, sessions: Sessions, site: Site
) -> None:
    session = sessions.create()
    try:
        stub = sessions_pb2_grpc.SessionServiceStub(channel)
        metadata = (("authorization", f"Bearer {farm.admin_key}"),)
        # Just within Envoy's limit; with the session order's envelope over NATS max_payload.
        request = request_of_bytes(session["id"], MAX_REQUEST_BYTES - GRPC_FRAME_BYTES)

        with pytest.raises(grpc.RpcError) as caught:
            stub.RunSessionCommand(request, metadata=metadata, timeout=60)

        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
        details = caught.value.details() or ""
        assert details.startswith("command: 1.00 MiB ("), details
        assert "over the 1 MiB limit of one message to an agent" in details
        # Over HTTP/JSON a body over the edge's limit is refused there, plainly.
        too_large = {"steps": [{"evaluate": step.evaluate} for step in evaluate_steps(1_300_000)]}
        response = sessions.http.post(f"/v1/sessions/{session['id']}:run", json=too_large)
        assert response.status_code == 413, response.text
        # The session goes on as it was.
        result = sessions.run(session["id"], url=site.url("/page"))
        assert result["finalUrl"] == site.url("/page")
        assert sessions.get(session["id"])["state"] == "SESSION_STATE_ACTIVE"
    finally:
        sessions.close(session["id"])


@pytest.mark.database_neutral
def test_a_pages_content_larger_than_one_agent_message_is_cut_and_kept_whole(
    sessions: Sessions, site: Site
) -> None:
    session = sessions.create()
    try:
        result = sessions.run(
            session["id"], url=site.url("/big-text"), content={"format": "CONTENT_FORMAT_TEXT"}
        )

        [artifact] = result["artifacts"]
        assert artifact["kind"] == "ARTIFACT_KIND_CONTENT"
        assert int(artifact["sizeBytes"]) > 1_400_000
        assert result["text"].startswith("farm farm")
        assert len(result["text"]) < int(artifact["sizeBytes"])
    finally:
        sessions.close(session["id"])


def test_a_task_whose_content_fills_one_agent_message_succeeds_cut(
    admin: Client, site: Site
) -> None:
    # The event's headers count against NATS max_payload too: an event that fits only
    # without them would make the server close the agent's connection.
    task = admin.create({"url": site.url("/big-text"), "content": {}})

    def finished() -> dict[str, Any] | None:
        found = admin.get(task["id"])
        return found if found["status"] in FINAL_STATES else None

    done = eventually(finished, within=60, message="the task did not finish")

    assert done["status"] == "TASK_STATUS_SUCCEEDED", done
    [artifact] = done["result"]["artifacts"]
    assert len(done["result"]["text"]) < int(artifact["sizeBytes"])
