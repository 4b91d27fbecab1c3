"""The HTTP/JSON transport's requests (from the protos' HTTP rules) and its error classes."""

import json

import grpc
import httpx
import pytest

import browserfarm
from browserfarm.config import client_options
from browserfarm.http_transport import HttpMethod, http_error
from farm.tasks.v1 import tasks_pb2

TASKS = tasks_pb2.DESCRIPTOR.services_by_name["TaskService"]


def built(method: str, request: object) -> httpx.Request:
    client = httpx.AsyncClient(base_url="http://farm:8080")
    rpc = HttpMethod(client, TASKS.methods_by_name[method])
    return rpc._request(request, [("authorization", "Bearer bf_key")])  # type: ignore[arg-type]


def test_a_create_posts_its_spec_as_the_body() -> None:
    spec = tasks_pb2.TaskSpec(url="https://example.com", idempotency_key="k")
    spec.content.SetInParent()
    request = built("CreateTask", tasks_pb2.CreateTaskRequest(spec=spec))
    assert (request.method, request.url.path) == ("POST", "/v1/tasks")
    assert json.loads(request.content) == {
        "url": "https://example.com",
        "idempotencyKey": "k",
        "content": {},
    }
    assert request.headers["authorization"] == "Bearer bf_key"


def test_path_fields_go_in_the_path_and_the_rest_in_the_query() -> None:
    get = built("GetTask", tasks_pb2.GetTaskRequest(id="tsk_1"))
    assert (get.method, str(get.url)) == ("GET", "http://farm:8080/v1/tasks/tsk_1")
    cancel = built("CancelTask", tasks_pb2.CancelTaskRequest(id="tsk_1"))
    assert (cancel.method, cancel.url.path) == ("POST", "/v1/tasks/tsk_1:cancel")
    listed = built("ListTasks", tasks_pb2.ListTasksRequest(page_size=5, page_token="t"))
    assert dict(listed.url.params) == {"pageSize": "5", "pageToken": "t"}


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind"),
    [
        (400, {"code": 3, "message": "url: must be http"}, [], browserfarm.InvalidArgument),
        (401, {"code": 16, "message": "unknown API key"}, [], browserfarm.Unauthenticated),
        (404, {"code": 5, "message": "no task"}, [], browserfarm.NotFound),
        (429, {"code": 8, "message": "over"}, [("retry-after", "2")], browserfarm.RateLimited),
        (429, {"code": 8, "message": "quota"}, [], browserfarm.QuotaExceeded),
        (503, "upstream connect error", [], browserfarm.Unavailable),
        (403, "denied by a proxy", [], browserfarm.PermissionDenied),
    ],
)
def test_an_http_refusal_is_the_same_exception_as_over_grpc(
    status: int, body: object, headers: list[tuple[str, str]], kind: type[Exception]
) -> None:
    raw = json.dumps(body).encode() if isinstance(body, dict) else str(body).encode()
    error = http_error(status, raw, headers)
    assert type(error) is kind
    if isinstance(error, browserfarm.RateLimited):
        assert error.retry_after == 2
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_the_transport_comes_from_the_argument_or_farm_transport() -> None:
    assert client_options(None, "k", {}).transport == "grpc"
    assert client_options(None, "k", {"FARM_TRANSPORT": "http"}).transport == "http"
    with pytest.raises(ValueError, match="transport"):
        client_options(None, "k", {}, transport="carrier-pigeon")
