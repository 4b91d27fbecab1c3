"""A query parameter given twice for a field that takes one value is named before the transcoder."""

import pytest

from farm_auth.query_params import repeated_parameter
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
    message = repeated_parameter("GET", ROUTES.lookup(path))
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
    assert repeated_parameter("GET", ROUTES.lookup(path)) is None


def test_the_count_is_told() -> None:
    assert repeated_parameter("GET", ROUTES.lookup("/v1/tasks?status=A&status=B&status=C")) == (
        "status: takes one value, got 3; give it once"
    )
