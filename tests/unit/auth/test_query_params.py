"""A query parameter the transcoder would take silently (twice, or set by the path) is refused."""

import pytest

from farm_auth.query_params import query_refusal
from farm_auth.route_table import RouteTable

ROUTES = RouteTable()


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/v1/tasks?status=TASK_STATUS_QUEUED&status=TASK_STATUS_RUNNING", "status"),
        ("/v1/tasks?label=a%3Db&pageSize=5&pageSize=6", "pageSize"),
        ("/v1/tasks?page_size=5&page_size=5&page_size=5", "page_size"),
        ("/v1/sessions?state=SESSION_STATE_ACTIVE&state=SESSION_STATE_CLOSED", "state"),
    ],
)
def test_a_field_of_one_value_given_twice_is_refused_naming_it(path: str, named: str) -> None:
    message = query_refusal("GET", ROUTES.lookup(path))
    assert message is not None
    assert message.startswith(f"{named}: takes one value, got ")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/tasks",
        "/v1/tasks?status=TASK_STATUS_QUEUED&pageSize=5",
        # A repeated field takes every value.
        "/v1/tasks?label=a%3Db&label=c%3Dd",
        # Unknown to the request: the transcoder's to refuse.
        "/v1/tasks?colour=a&colour=b",
        # No RPC at this path.
        "/v1/nothing?status=a&status=b",
    ],
)
def test_other_queries_are_left_to_the_transcoder(path: str) -> None:
    assert query_refusal("GET", ROUTES.lookup(path)) is None


def test_the_count_is_told() -> None:
    assert query_refusal("GET", ROUTES.lookup("/v1/tasks?status=A&status=B&status=C")) == (
        "status: takes one value, got 3; give it once"
    )


@pytest.mark.parametrize(
    ("method", "path", "named"),
    [
        ("GET", "/v1/tasks/A?id=B", "id"),
        ("POST", "/v1/tasks/A:cancel?id=B", "id"),
        ("GET", "/v1/artifacts/A:content?id=B", "id"),
        ("DELETE", "/v1/apiKeys/A?id=B", "id"),
        ("POST", "/v1/deadLetters/A:requeue?taskId=B", "taskId"),
        ("POST", "/v1/deadLetters/A:requeue?task_id=B", "task_id"),
        ("GET", "/v1/tenants/a?name=b", "name"),
    ],
)
def test_a_field_the_path_sets_is_refused_in_the_query(method: str, path: str, named: str) -> None:
    """The transcoder lets the query win: the call would act on B, its path saying A."""
    message = query_refusal(method, ROUTES.lookup(path))
    assert message is not None
    assert message.startswith(f"{named}: is given by the path ")
