"""A user with curl submits a batch through Envoy (POST /v1/tasks:batchCreate); the tasks run."""

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.cli_calls import FARM, farm_command, farm_json
from tests.e2e.conftest import Client, KeyFactory, fresh, http_client, new_tenant, unique_label
from tests.e2e.operator_http import set_rate
from tests.pages import Site

pytestmark = pytest.mark.e2e

# No agent serves this region: the rate-limited submit's tasks stay queued until cancelled.
NOWHERE = "submit-nowhere"
# About 400 KB of steps: two such specs are over a CreateTasks call's 768 KiB, so each
# spec of a file is a call of its own.
BIG_STEPS = [{"fill": {"selector": "#q", "value": "x" * 10_000}}] * 40
# Calls, one a spec, against a key that may make one a second.
BIG_SPECS = 5


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


def test_an_item_with_an_unknown_field_is_refused_alone_naming_it_and_the_others_are_queued(
    admin: Client, site: Site
) -> None:
    """The transcoder drops an unknown field: the edge names the item, the scheduler refuses it."""
    good = {"url": site.url("/page"), "content": {}, "region": NOWHERE}
    misspelt = {**good, "content": {"formt": "CONTENT_FORMAT_TEXT"}}
    batch = [good, {**good, "timeoutMS": 5000}, misspelt, good]

    response = admin.http.post(
        "/v1/tasks:batchCreate",
        json={"requests": batch},
        # A client's own list of refused items is dropped at the edge.
        headers={"x-farm-refused-items": '[["url", "forged", [[0, 3]]]]'},
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["errors"] == [
        {
            "index": 1,
            "field": "requests[1].timeoutMS",
            "code": "INVALID_ARGUMENT",
            "message": "requests[1].timeoutMS: unknown field, TaskSpec has no field "
            "'timeoutMS'; did you mean 'timeoutMs'?",
        },
        {
            "index": 2,
            "field": "requests[2].content.formt",
            "code": "INVALID_ARGUMENT",
            "message": "requests[2].content.formt: unknown field, ContentOptions has no field "
            "'formt'; did you mean 'format'?",
        },
    ]
    assert [task["status"] for task in answer["tasks"]] == ["TASK_STATUS_QUEUED"] * 2
    for task in answer["tasks"]:
        admin.http.post(f"/v1/tasks/{task['id']}:cancel")


def test_1000_items_with_one_unknown_field_are_each_refused_alone(
    admin: Client, site: Site
) -> None:
    item = {"url": site.url("/page"), "content": {}, "region": NOWHERE, "priorty": "HIGH"}

    response = admin.http.post("/v1/tasks:batchCreate", json={"requests": [item] * 1000})

    assert response.status_code == 200, response.text
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == [f"requests[{i}].priorty" for i in range(1000)]
    assert response.json()["tasks"] == []


def test_items_with_too_many_unknown_fields_to_name_refuse_the_batch_naming_the_first(
    admin: Client, site: Site
) -> None:
    item = {"url": site.url("/page"), "content": {}, "region": NOWHERE}
    batch = [{**item, f"note{index}": "x"} for index in range(1000)]

    response = admin.http.post("/v1/tasks:batchCreate", json={"requests": batch})

    assert response.status_code == 400, response.text
    assert response.json()["message"] == (
        "requests[0].note0: unknown field, TaskSpec has no field 'note0' (and 999 more items "
        "have unknown fields of their own, too many to answer item by item; nothing was queued)"
    )


def test_an_item_without_an_action_is_named_as_the_item_not_as_a_spec_field(
    admin: Client, site: Site
) -> None:
    """The item is the TaskSpec itself: `requests[1]`, not `requests[1].spec`."""
    good = {"url": site.url("/page"), "content": {}, "region": NOWHERE}
    both = {**good, "screenshot": {}}

    response = admin.http.post(
        "/v1/tasks:batchCreate", json={"requests": [good, {"url": site.url("/page")}, both]}
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    assert [(e["index"], e["field"]) for e in answer["errors"]] == [
        (1, "requests[1]"),
        (2, "requests[2]"),
    ]
    assert answer["errors"][0]["message"].startswith("requests[1]: exactly one action of ")
    assert answer["errors"][1]["message"].endswith("got screenshot, content")
    (task,) = answer["tasks"]
    admin.http.post(f"/v1/tasks/{task['id']}:cancel")


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


# database_neutral: the client's waits (a key's rate is kept in NATS); its key, limits
# and tasks are the rows the killed-then-resumed submit below makes on PostgreSQL too.
@pytest.mark.database_neutral
def test_farm_task_submit_waits_out_the_keys_rate_limit_and_queues_each_spec_once(
    farm: LocalFarm, admin: Client, make_key: KeyFactory, site: Site, tmp_path: Path
) -> None:
    tenant = new_tenant("submit")
    key = make_key("tasks.write", "tasks.read", tenant=tenant)
    set_rate(admin, key.api_key.id, per_second=1, burst=1)
    # The test's own look at the tenant's tasks spends another key's rate.
    checker = make_key("tasks.write", "tasks.read", tenant=tenant)
    labels = unique_label()
    spec = {"url": site.url("/page"), "content": {}, "steps": BIG_STEPS, "region": NOWHERE}
    specs = tmp_path / "specs.jsonl"
    specs.write_text((json.dumps({**spec, "labels": labels}) + "\n") * BIG_SPECS)

    with http_client(farm, checker.secret) as http:
        try:
            submit = farm_command(farm, "task", "submit", str(specs), key=key.secret)
            listed = tasks_labelled(http, labels)
        finally:
            for task in tasks_labelled(http, labels):
                http.post(f"/v1/tasks/{task['id']}:cancel")

    assert submit.returncode == 0, submit.stderr
    submitted = [task["id"] for task in json.loads(submit.stdout)["tasks"]]
    assert len(set(submitted)) == BIG_SPECS
    assert sorted(task["id"] for task in listed) == sorted(submitted)
    assert {task["status"] for task in listed} == {"TASK_STATUS_QUEUED"}
    # Five calls in a few seconds went over the key's rate: the waits were said.
    waits = submit.stderr.splitlines()
    assert waits, "no call was rate-limited"
    wait_line = rf"spec [1-{BIG_SPECS}] of {BIG_SPECS}: rate-limited \(Retry-After \d+ s\); "
    assert all(re.match(wait_line, line) for line in waits), submit.stderr


def test_farm_task_submit_killed_then_run_again_with_its_prefix_queues_each_spec_once(
    farm: LocalFarm, admin: Client, make_key: KeyFactory, site: Site, tmp_path: Path
) -> None:
    """The same command with the same --idempotency-prefix resumes a submit killed half-way."""
    tenant = new_tenant("resume")
    # One call a second: the first submit waits before a spec's call, and is killed then.
    slow = make_key("tasks.write", "tasks.read", tenant=tenant)
    set_rate(admin, slow.api_key.id, per_second=1, burst=1)
    key = make_key("tasks.write", "tasks.read", tenant=tenant)
    labels = unique_label()
    spec = {"url": site.url("/page"), "content": {}, "steps": BIG_STEPS, "region": NOWHERE}
    specs = tmp_path / "specs.jsonl"
    specs.write_text((json.dumps({**spec, "labels": labels}) + "\n") * BIG_SPECS)
    command = ("task", "submit", str(specs), "--idempotency-prefix", "nightly-2026-01-31")

    with http_client(farm, key.secret) as http:
        try:
            waited = submit_killed_at_its_first_wait(farm, command, slow.secret)
            queued_before = tasks_labelled(http, labels)
            again = farm_command(farm, *command, key=key.secret)
            queued = tasks_labelled(http, labels)
            once_more = farm_command(farm, *command, key=key.secret)
        finally:
            for task in tasks_labelled(http, labels):
                http.post(f"/v1/tasks/{task['id']}:cancel")

    assert re.match(rf"spec \d of {BIG_SPECS}: rate-limited", waited), waited
    assert 1 <= len(queued_before) < BIG_SPECS
    assert again.returncode == 0, again.stderr
    answered = [task["id"] for task in json.loads(again.stdout)["tasks"]]
    # The specs queued before the kill answer their tasks; the rest are queued once.
    assert sorted(answered[: len(queued_before)]) == sorted(t["id"] for t in queued_before)
    assert len(set(answered)) == BIG_SPECS
    assert sorted(task["id"] for task in queued) == sorted(answered)
    assert [task["id"] for task in json.loads(once_more.stdout)["tasks"]] == answered
    keys = [task["spec"]["idempotencyKey"] for task in json.loads(again.stdout)["tasks"]]
    assert keys == [f"nightly-2026-01-31:{line}" for line in range(1, BIG_SPECS + 1)]


def submit_killed_at_its_first_wait(farm: LocalFarm, command: tuple[str, ...], key: str) -> str:
    """Runs `farm COMMAND` and kills it once it says it waits out a rate limit: that line."""
    environment = {
        **os.environ,
        "FARM_URL": farm.envoy_url.removeprefix("http://"),
        "FARM_API_KEY": key,
    }
    with subprocess.Popen(
        [FARM, *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    ) as process:
        try:
            assert process.stderr is not None
            return process.stderr.readline()
        finally:
            process.kill()


def tasks_labelled(http: Any, labels: dict[str, str]) -> list[dict[str, Any]]:
    """The tenant's tasks with `labels` (one page: at most 1,000)."""
    params = {"label": [f"{k}={v}" for k, v in labels.items()], "pageSize": 1000}
    response = http.get("/v1/tasks", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["tasks"])
