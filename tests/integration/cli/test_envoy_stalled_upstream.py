"""A service that takes the edge's call but never answers (stalled: SIGSTOP, a hung disk).

Envoy gives up at the route's time with 504 (DEADLINE_EXCEEDED in the JSON body,
UNAVAILABLE to gRPC callers); the message names the service, as it does for one that
cannot be reached, and warns that the call may have been made. The scheduler here is a
listening socket nobody accepts from: the kernel completes the connection, as for a
stopped process, and nothing answers.
"""

import socket
from collections.abc import Iterator

import grpc
import httpx
import pytest

from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from tests.integration.cli.conftest import running_edge
from tests.unit.cli.fake_auth import GOOD_KEY

pytestmark = pytest.mark.integration

GOOD = {"authorization": f"Bearer {GOOD_KEY}"}
DEADLINE_EXCEEDED = 4
# The TaskService route's 60 s, shortened in the rendered config so the test is quick.
ROUTE = "route: {cluster: scheduler, timeout: 60s}"
SHORT_ROUTE = "route: {cluster: scheduler, timeout: 1s}"
STALLED = (
    "the scheduler service did not answer in time (upstream request timeout): it may be "
    "stalled or overloaded, and a call that changes something may still have taken effect"
)


def _short_route(config: str) -> str:
    assert config.count(ROUTE) >= 1, "the TaskService route's time is not where the test looks"
    return config.replace(ROUTE, SHORT_ROUTE)


@pytest.fixture(scope="module")
def stalled_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Envoy (its address) whose scheduler takes connections and answers nothing."""
    with (
        socket.create_server(("127.0.0.1", 0), backlog=64) as stalled,
        running_edge(
            tmp_path_factory.mktemp("stalled-edge"),
            scheduler_port=stalled.getsockname()[1],
            edit=_short_route,
        ) as edge,
    ):
        yield edge.grpc_target


def test_a_stalled_service_is_a_json_504_naming_it(stalled_edge: str) -> None:
    response = httpx.get(f"http://{stalled_edge}/v1/tasks/t5", headers=GOOD, timeout=15)
    assert response.status_code == 504, response.text
    assert response.headers["content-type"] == "application/json", response.text
    assert response.json() == {"code": DEADLINE_EXCEEDED, "message": STALLED}


def test_a_stalled_service_is_unavailable_to_grpc_callers_naming_it(
    stalled_edge: str,
) -> None:
    with grpc.insecure_channel(stalled_edge) as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetTask(
                tasks_pb2.GetTaskRequest(id="t5"), metadata=tuple(GOOD.items()), timeout=15
            )
    # Envoy's own 504 is UNAVAILABLE to a gRPC caller (gRPC's mapping of HTTP 504).
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details() == STALLED
