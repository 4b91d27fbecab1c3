"""The task list's state filter: its states in any case, an unknown one refused on the page."""

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from farm.tasks.v1 import tasks_pb2
from farm_console.farm import FarmError
from farm_console.pages import tasks
from farm_console.refusals import refused_keys
from farm_console.settings import ConsoleSettings
from farm_console.views import KEY_COOKIE, PREFIX, NotSignedIn, farm_refused, not_signed_in


class ListingFarm:
    """A farm whose task list is empty; it keeps each ListTasks request."""

    def __init__(self) -> None:
        self.tasks = self
        self.ListTasks = "list"
        self.asked: list[tasks_pb2.ListTasksRequest] = []

    async def call(self, key: str, method: str, request: Any) -> dict[str, Any]:
        self.asked.append(request)
        return {"tasks": []}


@pytest.fixture
def farm() -> ListingFarm:
    return ListingFarm()


@pytest.fixture
def client(farm: ListingFarm) -> Iterator[TestClient]:
    app = Starlette(
        routes=[Mount(PREFIX, routes=tasks.routes)],
        exception_handlers={NotSignedIn: not_signed_in, FarmError: farm_refused},
    )
    app.state.farm = farm
    app.state.settings = ConsoleSettings()
    app.state.refused_keys = refused_keys(app.state.settings)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        test_client.cookies.set(KEY_COOKIE, "bf_key")
        yield test_client


@pytest.mark.parametrize("asked", ["QUEUED", "queued", "Queued", "TASK_STATUS_QUEUED"])
def test_a_state_is_taken_in_any_case_and_shown_chosen(
    client: TestClient, farm: ListingFarm, asked: str
) -> None:
    answer = client.get("/console/tasks", params={"status": asked})

    assert answer.status_code == 200
    assert [request.status for request in farm.asked] == [tasks_pb2.TASK_STATUS_QUEUED]
    assert "<option selected>QUEUED</option>" in answer.text


@pytest.mark.parametrize("path", ["/console/tasks", "/console/tasks/rows"])
def test_an_unknown_state_is_refused_naming_the_filter_not_every_task_listed(
    client: TestClient, farm: ListingFarm, path: str
) -> None:
    answer = client.get(path, params={"status": "bogus"})

    assert answer.status_code == 400
    assert (
        "<code>INVALID_ARGUMENT</code> status: one of QUEUED, RUNNING, SUCCEEDED, FAILED, "
        "CANCELLED, not &#39;bogus&#39;"
    ) in answer.text
    assert farm.asked == []


def test_no_state_lists_every_task(client: TestClient, farm: ListingFarm) -> None:
    assert client.get("/console/tasks", params={"status": ""}).status_code == 200
    assert [request.status for request in farm.asked] == [tasks_pb2.TASK_STATUS_UNSPECIFIED]
