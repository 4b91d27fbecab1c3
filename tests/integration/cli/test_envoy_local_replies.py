"""Envoy's own replies to HTTP/JSON callers: JSON `{"code", "message"}` as the services'
errors, the status code unchanged; gRPC callers and a session's sockets as ever."""

import json
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_cli.launcher.envoy import MAX_REQUEST_BYTES
from tests.integration.cli.conftest import EdgeUnderTest, running_edge
from tests.unit.cli.fake_auth import CHECK_FAILS_KEY, GOOD_KEY, OVER_LIMIT_KEY

pytestmark = pytest.mark.integration

GOOD = {"authorization": f"Bearer {GOOD_KEY}"}
INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE, UNAUTHENTICATED = 3, 5, 8, 14, 16


def json_error(response: httpx.Response, status: int, code: int) -> str:
    """The message of `response`, checked to be a JSON error of `status` and gRPC `code`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json", response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    return str(body["message"])


def post_task(edge: EdgeUnderTest, body: bytes) -> httpx.Response:
    headers = {**GOOD, "content-type": "application/json"}
    return httpx.post(f"{edge.url}/v1/tasks", content=body, headers=headers, timeout=10)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [("timeoutMs", "abc", "spec.timeout_ms: "), ("priority", "HIGH", "spec.priority: ")],
)
def test_a_wrong_type_or_unknown_enum_value_is_a_json_400_naming_the_field(
    edge: EdgeUnderTest, field: str, value: str, named: str
) -> None:
    response = post_task(edge, json.dumps({"url": "https://x", field: value}).encode())
    message = json_error(response, 400, INVALID_ARGUMENT)
    assert message.startswith(named) and value in message, message


def test_malformed_json_is_a_json_400(edge: EdgeUnderTest) -> None:
    json_error(post_task(edge, b'{"url": "https://x", "screenshot": {'), 400, INVALID_ARGUMENT)


def test_an_unknown_query_parameter_is_a_json_400_naming_it(edge: EdgeUnderTest) -> None:
    response = httpx.get(f"{edge.url}/v1/tasks", params={"colour": "red"}, headers=GOOD)
    assert "colour" in json_error(response, 400, INVALID_ARGUMENT)


@pytest.mark.parametrize("path", ["/v1/nothing", "/admin"])
def test_an_unknown_path_is_a_json_404_naming_it(edge: EdgeUnderTest, path: str) -> None:
    response = httpx.get(f"{edge.url}{path}", headers=GOOD)
    assert path in json_error(response, 404, NOT_FOUND)


def test_a_body_over_the_limit_is_a_json_413_naming_the_limit(edge: EdgeUnderTest) -> None:
    body = json.dumps({"url": "https://x", "labels": {"x": "y" * MAX_REQUEST_BYTES}}).encode()
    assert json_error(post_task(edge, body), 413, INVALID_ARGUMENT) == (
        f"request: over the edge's limit of {MAX_REQUEST_BYTES} bytes a request may carry"
    )


def test_an_auth_service_that_does_not_answer_is_a_json_503(edge: EdgeUnderTest) -> None:
    headers = {"authorization": f"Bearer {CHECK_FAILS_KEY}"}
    response = httpx.get(f"{edge.url}/v1/tasks/t5", headers=headers)
    assert json_error(response, 503, UNAVAILABLE).startswith("authorization: ")


def test_an_auth_service_that_does_not_answer_is_unavailable_to_grpc_callers_saying_so(
    edge: EdgeUnderTest,
) -> None:
    # The CLI and the SDK call gRPC: they got UNAVAILABLE with no message at all.
    with grpc.insecure_channel(edge.grpc_target) as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetTask(
                tasks_pb2.GetTaskRequest(id="t5"),
                metadata=(("authorization", f"Bearer {CHECK_FAILS_KEY}"),),
                timeout=10,
            )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details() == "authorization: the auth service did not answer; try again"


def test_the_auth_services_refusals_keep_their_json(edge: EdgeUnderTest) -> None:
    refused = httpx.get(f"{edge.url}/v1/tasks/t5", headers={"authorization": "Bearer bf_x"})
    assert json_error(refused, 401, UNAUTHENTICATED) == "invalid API key"
    limited = httpx.get(
        f"{edge.url}/v1/tasks/t5", headers={"authorization": f"Bearer {OVER_LIMIT_KEY}"}
    )
    assert json_error(limited, 429, RESOURCE_EXHAUSTED) == (
        "API key over-limit is over its rate limit"
    )
    assert limited.headers["retry-after"] == "2"


def test_a_sessions_socket_keeps_envoys_text(edge: EdgeUnderTest) -> None:
    # No agent is named for the session (the fake auth gives no metadata).
    response = httpx.get(f"{edge.url}/v1/sessions/ses_1/cdp", headers=GOOD)
    assert response.status_code == 503
    assert response.headers["content-type"] == "text/plain"
    assert response.text == "no healthy upstream"


@pytest.fixture(scope="module")
def edge_without_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeUnderTest]:
    """The edge with the scheduler's fake stopped: its calls find no upstream."""
    with running_edge(tmp_path_factory.mktemp("edge-down")) as running:
        running.fakes.servers[2].stop(grace=None)
        yield running


def test_an_upstream_down_is_a_503_naming_the_service_and_unavailable_to_grpc_callers(
    edge_without_scheduler: EdgeUnderTest,
) -> None:
    edge = edge_without_scheduler
    response = httpx.get(f"{edge.url}/v1/tasks/t5", headers=GOOD)
    text = json_error(response, 503, UNAVAILABLE)
    # The caller learns which service is down, not only Envoy's "upstream".
    assert text.startswith("the scheduler service is unavailable (upstream connect error"), text
    assert text.endswith("); try again"), text
    with grpc.insecure_channel(edge.grpc_target) as channel:
        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetTask(
                tasks_pb2.GetTaskRequest(id="t5"), metadata=tuple(GOOD.items()), timeout=10
            )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details() == text
