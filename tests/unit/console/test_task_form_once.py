"""The task form's one-time token: the same form sent twice makes one task."""

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from starlette.testclient import TestClient

from farm.tasks.v1 import tasks_pb2
from farm_console.farm import FarmError
from farm_console.pages.tasks import SUBMIT_FORMS
from tests.unit.console.test_task_form import KEY, console


class IdempotentFarm:
    """CreateTask keeping idempotency keys as the scheduler does: same spec, same task."""

    def __init__(self) -> None:
        self.tasks = self
        self.CreateTask, self.ListTasks = "create", "list"
        self.made: dict[str, tuple[tasks_pb2.TaskSpec, str]] = {}
        self.created = 0

    async def call(self, key: str, method: str, request: Any) -> dict[str, Any]:
        if method == "list":
            return {}
        spec = request.spec
        if spec.idempotency_key in self.made:
            earlier, task_id = self.made[spec.idempotency_key]
            if earlier != spec:
                raise FarmError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"idempotencyKey: {spec.idempotency_key!r} was used by task {task_id} "
                    "with a different spec",
                )
            return {"id": task_id}
        self.created += 1
        task_id = f"t_{self.created}"
        if spec.idempotency_key:
            self.made[spec.idempotency_key] = (spec, task_id)
        return {"id": task_id}


@pytest.fixture
def farm_console() -> Iterator[tuple[TestClient, IdempotentFarm]]:
    farm = IdempotentFarm()
    for client in console(farm):  # type: ignore[arg-type]
        yield client, farm


def _token(client: TestClient) -> str:
    page = client.get("/console/tasks").text
    start = page.index('name="formToken" value="') + len('name="formToken" value="')
    return page[start : page.index('"', start)]


def test_the_same_form_submitted_twice_makes_one_task_and_shows_it_both_times(
    farm_console: tuple[TestClient, IdempotentFarm],
) -> None:
    client, farm = farm_console
    form = {"url": "https://a.test/", "formToken": _token(client)}

    first = client.post("/console/tasks", data=form, follow_redirects=False)
    second = client.post("/console/tasks", data=form, follow_redirects=False)

    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"] == "/console/tasks/t_1"
    assert farm.created == 1


def test_each_form_shown_makes_its_own_task(
    farm_console: tuple[TestClient, IdempotentFarm],
) -> None:
    client, farm = farm_console

    for _ in range(2):
        form = {"url": "https://a.test/", "formToken": _token(client)}
        client.post("/console/tasks", data=form, follow_redirects=False)

    assert farm.created == 2


def test_a_form_changed_after_it_made_its_task_says_so_and_makes_none(
    farm_console: tuple[TestClient, IdempotentFarm],
) -> None:
    client, farm = farm_console
    token = _token(client)
    client.post(
        "/console/tasks",
        data={"url": "https://a.test/", "formToken": token},
        follow_redirects=False,
    )

    answer = client.post("/console/tasks", data={"url": "https://b.test/", "formToken": token})

    assert answer.status_code == 409
    assert "This form already submitted task t_1, and was changed since" in answer.text
    assert 'value="https://b.test/"' in answer.text
    assert farm.created == 1


@pytest.mark.parametrize("token", ["", "forged.123.abc"])
def test_a_form_without_a_good_token_is_refused_and_makes_no_task(
    farm_console: tuple[TestClient, IdempotentFarm], token: str
) -> None:
    client, farm = farm_console

    answer = client.post("/console/tasks", data={"url": "https://a.test/", "formToken": token})

    assert answer.status_code == 400
    assert "formToken: the form is out of date" in answer.text
    assert farm.created == 0


def test_a_token_is_the_key_holders_only() -> None:
    assert SUBMIT_FORMS.nonce("another key", SUBMIT_FORMS.make(KEY)) is None
