"""The HTTP/JSON API's paths as the transcoder matches them, and the methods each takes."""

import pytest

from farm_auth.http_routes import HttpMethods, http_bindings, route_for

METHODS = HttpMethods()
BINDINGS = http_bindings()


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/tasks", "GET, POST"),
        ("PUT", "/v1/tasks?pageSize=5", "GET, POST"),
        ("GET", "/v1/tasks:batchCreate", "POST"),
        ("GET", "/v1/tasks:run", "POST"),
        ("POST", "/v1/tasks/tsk_1", "GET"),
        ("GET", "/v1/tasks/tsk_1:cancel", "POST"),
        ("POST", "/v1/tasks/tsk_1:watch", "GET"),
        ("POST", "/v1/whoami", "GET"),
        ("GET", "/v1/apiKeys/key_1", "DELETE, PATCH"),
        ("HEAD", "/v1/sessions/ses_1", "GET"),
    ],
)
def test_a_known_path_asked_with_another_method_is_refused_naming_those_it_takes(
    method: str, path: str, allow: str
) -> None:
    refused = METHODS.refusal(method, path)
    assert refused is not None
    assert refused.allow == allow
    bare_path = path.partition("?")[0]
    assert refused.message == f"method: {method} is not allowed on {bare_path}; it takes {allow}"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/tasks"),
        ("POST", "/v1/tasks"),
        ("POST", "/v1/tasks/tsk_1:cancel/"),
        ("PATCH", "/v1/tenants/acme/limits"),
        # No RPC has that path: the transcoder's 404 says so.
        ("GET", "/v1/nothing"),
        ("DELETE", "/v1/tasks/tsk_1/more"),
        # Not the JSON API (gRPC calls, the console).
        ("GET", "/farm.tasks.v1.TaskService/CreateTask"),
        ("DELETE", "/console/tasks"),
    ],
)
def test_a_method_the_path_takes_or_a_path_of_no_rpc_is_let_through(method: str, path: str) -> None:
    assert METHODS.refusal(method, path) is None


def test_a_known_custom_verb_is_the_verbs_and_an_unknown_one_part_of_the_id() -> None:
    # As the transcoder matches: GET /v1/tasks/A:cancel is not GetTask of "A:cancel".
    assert route_for(BINDINGS, "GET", "/v1/tasks/tsk_1:cancel") is None
    cancel = route_for(BINDINGS, "POST", "/v1/tasks/tsk_1:cancel")
    assert cancel is not None and cancel.request.name == "CancelTaskRequest"
    get = route_for(BINDINGS, "GET", "/v1/tasks/tsk_1:bogus")
    assert get is not None and get.request.name == "GetTaskRequest"
