"""The task list's state filter: its states in any case, an unknown one refused on the page."""

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from farm.tasks.v1 import tasks_pb2
from farm_console.pages import tasks
from tests.unit.console.listing_pages import ListingFarm, signed_in_client


@pytest.fixture
def farm() -> ListingFarm:
    return ListingFarm("tasks", "ListTasks", {"tasks": []})


@pytest.fixture
def client(farm: ListingFarm) -> Iterator[TestClient]:
    with signed_in_client(farm, tasks.routes) as test_client:
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
