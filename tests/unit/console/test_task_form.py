"""The console's refused forms: what it refuses itself, the status a refusal gets, and the
task form's one-time token (the same form sent twice makes one task)."""

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from starlette.testclient import TestClient

from farm.tasks.v1 import tasks_pb2
from farm_console.farm import FarmError
from farm_console.forms import FormError, refusal
from farm_console.pages import tasks
from farm_console.pages.keys import CREATE_FORMS
from farm_console.pages.tasks import SUBMIT_FORMS
from tests.unit.console.form_pages import KEY, RefusingFarm, console


@pytest.fixture
def invalid() -> Iterator[tuple[TestClient, RefusingFarm]]:
    farm = RefusingFarm(grpc.StatusCode.INVALID_ARGUMENT)
    for client in console(farm):
        yield client, farm


def test_a_label_without_equals_is_refused_at_its_field_before_any_call(
    invalid: tuple[TestClient, RefusingFarm],
) -> None:
    client, farm = invalid

    answer = client.post("/console/tasks", data={"url": "https://a.test/", "label": "nightly"})

    assert answer.status_code == 400
    assert (
        '<p class="error" role="alert" id="label-error">'
        "labels: must be written key=value, got &#39;nightly&#39;</p>"
    ) in answer.text
    assert 'value="nightly"' in answer.text
    assert farm.created == []


@pytest.mark.parametrize("action", ["extract", "script", "Screenshot", ""])
def test_an_action_the_drop_down_does_not_offer_is_refused_at_its_field_not_taken_as_a_screenshot(
    invalid: tuple[TestClient, RefusingFarm], action: str
) -> None:
    client, farm = invalid

    answer = client.post("/console/tasks", data={"url": "https://a.test/", "action": action})

    assert answer.status_code == 400
    assert (
        '<p class="error" role="alert" id="action-error">'
        f"action: must be one of screenshot, pdf, content, got &#39;{action}&#39;</p>"
    ) in answer.text
    assert '<select name="action" aria-invalid="true" aria-describedby="action-error">' in (
        answer.text
    )
    assert farm.created == []


@pytest.mark.parametrize("action", ["pdf", "content"])
@pytest.mark.parametrize(
    ("field", "value", "name"),
    [("selector", "#main", "Element"), ("fullPage", "1", "full page")],
)
def test_a_screenshot_option_with_another_action_is_refused_at_its_field_not_dropped(
    invalid: tuple[TestClient, RefusingFarm], action: str, field: str, value: str, name: str
) -> None:
    client, farm = invalid

    form = {"url": "https://a.test/", "action": action, field: value}
    answer = client.post("/console/tasks", data=form)

    assert answer.status_code == 400
    assert (
        f'<p class="error" role="alert" id="{field}-error">screenshot.{field}: '
        f"{name} only goes with screenshot, not with {action}</p>"
    ) in answer.text
    assert farm.created == []


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.UNAVAILABLE, 503),
    ],
)
@pytest.mark.parametrize(
    ("page", "form"),
    [
        ("/console/tasks", {"url": "https://a.test/", "formToken": ""}),
        (
            "/console/keys",
            {"name": "k", "scopes": "tasks.read", "formToken": ""},
        ),
    ],
    ids=["task", "key"],
)
def test_a_form_the_farm_refuses_has_the_status_the_http_api_gives_its_code(
    code: grpc.StatusCode, status: int, page: str, form: dict[str, str]
) -> None:
    # Made now, not at collection: a token lapses, and a long run reaches this late.
    tokens = SUBMIT_FORMS if page == "/console/tasks" else CREATE_FORMS
    form = {**form, "formToken": tokens.make(KEY)}
    for client in console(RefusingFarm(code)):
        answer = client.post(page, data=form)

        assert answer.status_code == status
        assert "refused by the farm" in answer.text


@pytest.mark.parametrize("priority", ["URGENT", "PRIORITY_URGENT", "UNSPECIFIED", ""])
def test_a_priority_the_drop_down_does_not_offer_is_refused_at_its_field(
    invalid: tuple[TestClient, RefusingFarm], priority: str
) -> None:
    client, farm = invalid

    form = {"url": "https://a.test/", "priority": priority, "formToken": SUBMIT_FORMS.make(KEY)}
    answer = client.post("/console/tasks", data=form)

    assert answer.status_code == 400
    assert (
        '<p class="error" role="alert" id="priority-error">'
        f"priority: must be one of HIGH, NORMAL, LOW, got &#39;{priority}&#39;</p>"
    ) in answer.text
    assert farm.created == []


@pytest.mark.parametrize("priority", ["high", "Priority_Low"])
def test_a_priority_in_another_case_is_taken(
    invalid: tuple[TestClient, RefusingFarm], priority: str
) -> None:
    client, farm = invalid

    form = {"url": "https://a.test/", "priority": priority, "formToken": SUBMIT_FORMS.make(KEY)}
    client.post("/console/tasks", data=form)

    assert [request.spec.priority for request in farm.created] == [
        tasks_pb2.Priority.Value(f"PRIORITY_{priority.upper().removeprefix('PRIORITY_')}")
    ]


def test_a_value_the_spec_cannot_hold_is_refused_at_the_field_it_is_in() -> None:
    with pytest.raises(FormError) as refused:
        tasks.parse_spec({"url": "https://a.test/", "screenshot": {"fullPage": "yes"}})

    assert refused.value.field == "screenshot.fullPage"
    assert refusal(str(refused.value), tasks.FORM_FIELDS).field == "fullPage"


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
