"""The task list's state filter: its states in any case, an unknown one refused on the page."""

from collections.abc import Iterator

import grpc
import pytest
from starlette.testclient import TestClient

from farm.tasks.v1 import tasks_pb2
from farm_console.farm import FarmError
from farm_console.pages import tasks
from farm_console.views import SCOPES_COOKIE
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


REFUSED_STATE = "status: one of QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, not &#39;bogus&#39;"


def test_an_unknown_state_is_refused_at_the_filter_not_every_task_listed(
    client: TestClient, farm: ListingFarm
) -> None:
    answer = client.get("/console/tasks", params={"status": "bogus", "label": "job=x"})

    assert answer.status_code == 400
    assert f'<p class="error" role="alert" id="status-error">{REFUSED_STATE}</p>' in answer.text
    assert farm.asked == []
    # The page is still there to correct the filter in: its form, as it was typed.
    assert '<form method="get" action="/console/tasks" class="filter" id="task-filter">' in (
        answer.text
    )
    assert 'name="label" value="job=x"' in answer.text
    assert "No tasks: the farm refused the filter." in answer.text


def test_an_unknown_state_in_a_refresh_of_the_rows_is_refused(
    client: TestClient, farm: ListingFarm
) -> None:
    answer = client.get("/console/tasks/rows", params={"status": "bogus"})

    assert answer.status_code == 400
    assert f"<code>INVALID_ARGUMENT</code> {REFUSED_STATE}" in answer.text
    assert farm.asked == []


def test_a_label_filter_the_farm_refuses_is_shown_at_the_label_field() -> None:
    refused = FarmError(grpc.StatusCode.INVALID_ARGUMENT, "label: must be written key=value")
    farm = ListingFarm("tasks", "ListTasks", {}, refusal=refused)
    with signed_in_client(farm, tasks.routes) as client:
        answer = client.get("/console/tasks", params={"label": "job"})

    assert answer.status_code == 400
    assert (
        '<input name="label" value="job" placeholder="job=nightly" aria-invalid="true" '
        'aria-describedby="label-error">'
    ) in answer.text
    assert (
        '<p class="error" role="alert" id="label-error">label: must be written key=value</p>'
    ) in answer.text
    assert 'id="submit-task"' in answer.text


def test_no_state_lists_every_task(client: TestClient, farm: ListingFarm) -> None:
    assert client.get("/console/tasks", params={"status": ""}).status_code == 200
    assert [request.status for request in farm.asked] == [tasks_pb2.TASK_STATUS_UNSPECIFIED]


@pytest.mark.parametrize(
    ("scopes", "form_shown"), [("tasks.read", False), ("tasks.read tasks.write", True)]
)
def test_the_submit_form_shows_only_to_a_key_that_may_submit(
    client: TestClient, scopes: str, form_shown: bool
) -> None:
    # A tasks.read key was offered the form, filled it in, and got 403 for it.
    client.cookies.set(SCOPES_COOKIE, scopes)
    answer = client.get("/console/tasks")

    assert answer.status_code == 200
    assert ('id="submit-task"' in answer.text) is form_shown
    assert ("it has no <code>tasks.write</code> scope" in answer.text) is not form_shown
