"""A NUL character in text, which PostgreSQL cannot hold: refused at the door, or replaced.

Not database-neutral: on PostgreSQL these requests were 500s and such a task never ended.
"""

from typing import Any

import grpc
import pytest

from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from tests.e2e.conftest import Client, unique_label
from tests.pages import Site

pytestmark = pytest.mark.e2e

# (what, the call, the field its 400 names)
REFUSED: list[tuple[str, str, str, dict[str, Any] | None, str]] = [
    ("idempotency key", "POST", "/v1/tasks", {"idempotencyKey": "a\x00b"}, "idempotencyKey"),
    ("label value", "POST", "/v1/tasks", {"labels": {"k": "a\x00b"}}, 'labels["k"]'),
    ("step selector", "POST", "/v1/tasks", {"steps": [{"click": "#a\x00"}]}, "steps[0].click"),
    ("label filter", "GET", "/v1/tasks?label=k=a%00b", None, "label[0]"),
    ("artifact list", "GET", "/v1/artifacts?taskId=a%00b", None, "taskId"),
    ("baseline list", "GET", "/v1/baselines?name=a%00b", None, "name"),
]


@pytest.mark.parametrize(
    ("method", "path", "changes", "field"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_a_nul_character_in_text_is_a_400_naming_its_field(
    admin: Client,
    site: Site,
    method: str,
    path: str,
    changes: dict[str, Any] | None,
    field: str,
) -> None:
    label = unique_label()
    body = None
    if changes is not None:
        labels = {**label, **changes.get("labels", {})}
        body = {"url": site.url("/page"), "screenshot": {}, **changes, "labels": labels}

    response = admin.http.request(method, path, json=body)

    assert response.status_code == 400, response.text
    assert response.json()["message"] == f"{field}: must not contain a NUL character (\\u0000)"
    listed = admin.http.get("/v1/tasks", params={"label": f"test={label['test']}"})
    assert listed.json()["tasks"] == []


def test_a_grpc_request_with_a_nul_character_is_invalid_argument(
    channel: grpc.Channel, admin: Client, site: Site
) -> None:
    spec = tasks_pb2.TaskSpec(url=site.url("/page"), idempotency_key="k\x00")
    spec.screenshot.SetInParent()

    with pytest.raises(grpc.RpcError) as caught:
        tasks_pb2_grpc.TaskServiceStub(channel).CreateTask(
            tasks_pb2.CreateTaskRequest(spec=spec),
            metadata=(("authorization", f"Bearer {admin.key}"),),
            timeout=10,
        )

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "idempotencyKey: must not contain a NUL character (\\u0000)"


def test_a_page_error_with_a_nul_character_still_ends_the_task(admin: Client, site: Site) -> None:
    # The page's own text: a thrown Error's message, which the task's error repeats.
    source = '() => { throw new Error("before" + String.fromCharCode(0) + "after") }'

    task = admin.run({"url": site.url("/page"), "script": {"source": source}, "maxAttempts": 1})

    assert task["status"] == "TASK_STATUS_FAILED", task
    assert task["error"]["code"] == "SCRIPT_FAILED"
    assert "before\ufffdafter" in task["error"]["message"]
    assert "before\ufffdafter" in task["attemptHistory"][0]["error"]["message"]
