"""A user with curl submits a batch through Envoy (POST /v1/tasks:batchCreate); the tasks run."""

import json
from pathlib import Path

import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client, farm_json, fresh, unique_label
from tests.pages import Site

pytestmark = pytest.mark.e2e


def test_a_batch_over_http_queues_the_valid_items_which_then_run(admin: Client, site: Site) -> None:
    labels = unique_label()
    good = fresh(
        {"url": site.url("/page"), "content": {"format": "CONTENT_FORMAT_TEXT"}, "labels": labels}
    )
    batch = [good, {"url": "gopher://example.com/", "content": {}}, good, good]

    response = admin.http.post("/v1/tasks:batchCreate", json={"requests": batch})

    assert response.status_code == 200, response.text
    answer = response.json()
    assert [error["index"] for error in answer["errors"]] == [1]
    assert answer["errors"][0]["field"] == "requests[1].url"
    assert answer["errors"][0]["code"] == "INVALID_ARGUMENT"
    created = answer["tasks"]
    assert [task["status"] for task in created] == ["TASK_STATUS_QUEUED"] * 3
    finished = [admin.wait(task["id"]) for task in created]
    assert [task["status"] for task in finished] == ["TASK_STATUS_SUCCEEDED"] * 3
    assert all("Hello, farm" in task["result"]["text"] for task in finished)


def test_a_batchs_screenshots_are_stored_under_their_grants_from_one_signature(
    admin: Client, site: Site
) -> None:
    """The batch's grants share one signed root; storage takes each task's upload with its own."""
    spec = fresh({"url": site.url("/page"), "screenshot": {}, "labels": unique_label()})

    response = admin.http.post("/v1/tasks:batchCreate", json={"requests": [spec, spec, spec]})

    assert response.status_code == 200, response.text
    finished = [admin.wait(task["id"]) for task in response.json()["tasks"]]
    assert [task["status"] for task in finished] == ["TASK_STATUS_SUCCEEDED"] * 3
    for task in finished:
        (artifact,) = task["result"]["artifacts"]
        assert admin.artifact_bytes(artifact["id"]).content.startswith(b"\x89PNG")


def test_a_batch_of_1001_items_over_http_is_a_400_naming_requests(
    admin: Client, site: Site
) -> None:
    spec = {"url": site.url("/page"), "content": {}}

    response = admin.http.post("/v1/tasks:batchCreate", json={"requests": [spec] * 1001})

    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("requests: holds 1001 task specs")


def test_farm_task_submit_queues_a_json_lines_file_over_grpc(
    farm: LocalFarm, admin: Client, site: Site, tmp_path: Path
) -> None:
    spec = fresh({"url": site.url("/page"), "content": {}, "labels": unique_label()})
    specs = tmp_path / "specs.jsonl"
    specs.write_text(json.dumps(spec) + "\n" + json.dumps(spec) + "\n")

    answer = farm_json(farm, "task", "submit", str(specs))

    assert [task["status"] for task in answer["tasks"]] == ["TASK_STATUS_QUEUED"] * 2
    assert answer.get("errors", []) == []
    assert admin.wait(answer["tasks"][0]["id"])["status"] == "TASK_STATUS_SUCCEEDED"
