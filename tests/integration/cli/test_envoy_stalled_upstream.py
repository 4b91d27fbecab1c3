"""A service that takes the edge's call but never answers (stalled: SIGSTOP, a hung disk).

Envoy gives up at the route's time with 504 (DEADLINE_EXCEEDED in the JSON body,
UNAVAILABLE to gRPC callers); the message names the service, as it does for one that
cannot be reached, and warns that the call may have been made. The scheduler here is a
listening socket nobody accepts from: the kernel completes the connection, as for a
stopped process, and nothing answers.
"""

import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_cli.launcher.envoy import (
    Endpoint,
    EnvoySettings,
    envoy_ready,
    envoy_spec,
    write_envoy_config,
)
from farm_cli.launcher.processes import ManagedProcess, free_ports, wait_until
from tests.integration.cli.conftest import ROOT
from tests.unit.cli.fake_auth import GOOD_KEY
from tests.unit.cli.fake_services import start_fake_farm

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


@pytest.fixture(scope="module")
def stalled_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Envoy (its address) whose scheduler takes connections and answers nothing."""
    state: Path = tmp_path_factory.mktemp("stalled-edge")
    fakes = start_fake_farm()
    stalled = socket.create_server(("127.0.0.1", 0), backlog=64)
    listen_port, admin_port = free_ports(2)
    settings = EnvoySettings(
        listen_port=listen_port,
        admin_port=admin_port,
        descriptor_path=ROOT / "envoy" / "farm.binpb",
        upstreams={
            "auth": [Endpoint("127.0.0.1", fakes.auth_port)],
            "auth_check": [Endpoint("127.0.0.1", fakes.check_port)],
            "storage": [Endpoint("127.0.0.1", fakes.storage_port)],
            "scheduler": [Endpoint("127.0.0.1", stalled.getsockname()[1])],
        },
    )
    config = write_envoy_config(ROOT / "envoy" / "envoy.yaml.j2", settings, state / "envoy.yaml")
    text = config.read_text()
    assert text.count(ROUTE) >= 1, "the TaskService route's time is not where the test looks"
    config.write_text(text.replace(ROUTE, SHORT_ROUTE))
    process = ManagedProcess(envoy_spec(config), state, state)
    process.start()
    try:
        wait_until(lambda: envoy_ready(settings), timeout=30, what="envoy", process=process)
        yield f"127.0.0.1:{listen_port}"
    finally:
        process.stop(timeout=5)
        stalled.close()
        fakes.stop()


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
