"""Bad input at the edge: a 400 that names the field, and nothing half-written."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format

from farm.tasks.v1 import tasks_pb2
from farm_cli.launcher.envoy import MAX_REQUEST_BYTES
from farm_scheduler.field_checks import MAX_CACHE_TTL_SECONDS, MAX_URL_CHARS
from tests.e2e.conftest import Client, unique_label

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

GOOD: dict[str, Any] = {"url": "http://127.0.0.1:9/page", "screenshot": {}}

# (what is wrong, the spec's changes, the field the message must start with)
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("no url", {"url": ""}, "url"),
    ("not http", {"url": "ftp://example.com/file"}, "url"),
    ("no host", {"url": "http:///path"}, "url"),
    ("host with an empty label", {"url": "http://a..b/"}, "url: host 'a..b' has an empty label"),
    ("host with an empty first label", {"url": "http://.example/"}, "url: host '.example'"),
    ("url too long", {"url": "http://example.com/" + "a" * 3000}, "url"),
    ("two actions", {"pdf": {}}, "spec"),
    ("quality with png", {"screenshot": {"quality": 50}}, "screenshot.quality"),
    (
        "quality out of range",
        {"screenshot": {"format": "IMAGE_FORMAT_JPEG", "quality": 101}},
        "screenshot.quality",
    ),
    ("viewport too wide", {"viewport": {"width": 20000, "height": 600}}, "viewport.width"),
    ("timeout too short", {"timeoutMs": 5}, "timeoutMs"),
    ("too many attempts", {"maxAttempts": 99}, "maxAttempts"),
    ("bad region", {"region": "EU West"}, "region"),
    ("bad label key", {"labels": {"Bad Key": "x"}}, "labels"),
    ("empty step", {"steps": [{}]}, "steps[0]"),
    ("unknown paper", {"screenshot": None, "pdf": {"paperFormat": "A99"}}, "pdf.paperFormat"),
    ("margin in em", {"screenshot": None, "pdf": {"margin": {"top": "1em"}}}, "pdf.margin.top"),
    ("page ranges words", {"screenshot": None, "pdf": {"pageRanges": "all"}}, "pdf.pageRanges"),
    (
        "clip with selector",
        {"screenshot": {"selector": "h1", "clip": {"width": 5, "height": 5}}},
        "screenshot.clip",
    ),
]


def _spec(changes: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    spec = {**GOOD, **changes, "labels": {**labels, **changes.get("labels", {})}}
    return {key: value for key, value in spec.items() if value is not None}


@pytest.mark.parametrize(
    ("changes", "field"), [(c, f) for _, c, f in INVALID], ids=[name for name, _, _ in INVALID]
)
def test_an_invalid_field_is_a_400_naming_it(
    admin: Client, changes: dict[str, Any], field: str
) -> None:
    label = unique_label()
    response = admin.http.post("/v1/tasks", json=_spec(changes, label))

    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(field), response.json()
    assert admin.http.get("/v1/tasks", params={"label": f"test={label['test']}"}).json() == {
        "tasks": [],
        "nextPageToken": "",
    }


# (the spec's changes, how the message starts): values Envoy's transcoder would refuse
# naming the field by its proto path (spec.timeout_ms) or by none at all, and an object
# where a label's text belongs, which it garbles into bytes no service can read.
WRONG_KINDS: list[tuple[dict[str, Any], str]] = [
    ({"timeoutMs": "abc"}, 'timeoutMs: must be a whole number (int32), got "abc"'),
    ({"steps": [{"click": "#a"}, {"wait": {"ms": 1.5}}]}, "steps[1].wait.ms: must be a whole"),
    ({"screenshot": {"fullPage": 1}}, "screenshot.fullPage: must be true or false, got 1"),
    ({"timeoutMs": []}, "timeoutMs: must be a number, got an array"),
    ({"priority": "HIGH"}, "priority: must be one of PRIORITY_HIGH, "),
    ({"labels": {"": {}}}, 'labels[""]: must be a string, got an object'),
]


@pytest.mark.parametrize(("changes", "message"), WRONG_KINDS, ids=[m for _, m in WRONG_KINDS])
def test_a_value_of_the_wrong_json_kind_is_a_400_naming_its_json_path(
    admin: Client, changes: dict[str, Any], message: str
) -> None:
    label = unique_label()
    spec = {**GOOD, **changes, "labels": {**label, **changes.get("labels", {})}}

    response = admin.http.post("/v1/tasks", json=spec)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == 3
    assert response.json()["message"].startswith(message), response.json()
    listed = admin.http.get("/v1/tasks", params={"label": f"test={label['test']}"}).json()
    assert listed["tasks"] == []


# Values the transcoder reads although they are not the plain JSON kind: the check
# of kinds before it must let them through.
LENIENT_KINDS: list[dict[str, Any]] = [
    {"screenshot": {"fullPage": "yes"}, "timeoutMs": "+5000", "priority": "1"},
    {"steps": [[{"scroll": "bottom"}], None], "setup": {"blockResources": "RESOURCE_TYPE_IMAGE"}},
    {"maxAttempts": 2.0, "setup": {"deviceScaleFactor": "2"}, "labels": {"x": None}},
]


@pytest.mark.parametrize("changes", LENIENT_KINDS)
def test_a_value_the_transcoder_reads_is_taken(admin: Client, changes: dict[str, Any]) -> None:
    label = unique_label()
    # No agent serves this region: the task stays queued until it is cancelled.
    spec = {
        **GOOD,
        **changes,
        "region": "nowhere",
        "labels": {**label, **changes.get("labels", {})},
    }

    created = admin.create(spec)
    admin.http.post(f"/v1/tasks/{created['id']}:cancel")

    assert created["status"] == "TASK_STATUS_QUEUED"


def test_a_spec_at_its_limits_is_stored_as_sent_with_the_defaults_filled_in(
    admin: Client,
) -> None:
    label = unique_label()
    origin = "http://127.0.0.1:9/"
    sent: dict[str, Any] = {
        "url": origin + "a" * (MAX_URL_CHARS - len(origin)),
        "screenshot": {"format": "IMAGE_FORMAT_JPEG", "quality": 100, "selector": "#" * 1000},
        "viewport": {"width": 10000, "height": 1},
        "timeoutMs": 300000,
        "maxAttempts": 10,
        # No agent serves this region: the task stays queued until it is cancelled.
        "region": "r" * 32,
        "labels": {**label, "k" * 63: "v" * 256},
        "idempotencyKey": label["test"].ljust(128, "k"),
        "cacheTtlSeconds": MAX_CACHE_TTL_SECONDS,
    }

    created = admin.create(sent)
    try:
        stored = admin.get(created["id"])["spec"]
    finally:
        admin.http.post(f"/v1/tasks/{created['id']}:cancel")

    defaults = {"priority": "PRIORITY_NORMAL", "waitUntil": "WAIT_UNTIL_LOAD"}
    as_sent = json_format.ParseDict({**sent, **defaults}, tasks_pb2.TaskSpec())
    assert json_format.ParseDict(stored, tasks_pb2.TaskSpec()) == as_sent


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        (
            "POST",
            "/v1/tasks",
            b'{"url": "http://x.test", "screenshot": {',
            "expecting property name enclosed in double quotes at line 1 column 41",
        ),
        (
            "POST",
            "/v1/tasks:batchCreate",
            b'{"requests": [}',
            "expecting value at line 1 column 15",
        ),
        (
            "POST",
            "/v1/tasks/tsk_1:cancel",
            b"{",
            "expecting property name enclosed in double quotes",
        ),
        ("POST", "/v1/sessions", b'{"viewport": ', "expecting value at line 1 column 14"),
        ("GET", "/v1/whoami", b"[1,", "expecting value at line 1 column 4"),
        ("POST", "/v1/tasks", b"{'url': 'http://x.test'}", "expecting property name enclosed"),
    ],
)
def test_malformed_json_is_a_400_naming_the_body(
    admin: Client, method: str, path: str, body: bytes, message: str
) -> None:
    response = admin.http.request(
        method, path, content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400, response.text
    assert response.json()["code"] == 3
    assert response.json()["message"].startswith(f"body: not valid JSON: {message}"), response.text


def test_an_unknown_enum_value_is_a_400_naming_the_field(admin: Client) -> None:
    response = admin.http.post("/v1/tasks", json={**GOOD, "priority": "PRIORITY_URGENT"})

    assert response.status_code == 400
    assert "priority" in response.text


# (path, the body for a spec with the test's labels, the unknown field as the message names it)
UNKNOWN_FIELDS: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]], str]] = [
    ("/v1/tasks", lambda spec: {**spec, "cacheTtlSecond": 5}, "cacheTtlSecond"),
    ("/v1/tasks", lambda spec: {**spec, "screenshot": {"fullPag": True}}, "screenshot.fullPag"),
    ("/v1/tasks", lambda spec: {"spec": spec}, "spec"),
    # The transcoder takes a path with a trailing slash as the path without one. (A
    # batch item's unknown field refuses that item alone: test_batch_create.py.)
    ("/v1/tasks/", lambda spec: {**spec, "cacheTtlSecond": 5}, "cacheTtlSecond"),
    # A call whose path names all it takes: the transcoder dropped a body's other fields.
    ("/v1/tasks/tsk_none:cancel", lambda spec: {"reason": "no longer needed"}, "reason"),
]


@pytest.mark.parametrize(
    ("path", "body", "named"), UNKNOWN_FIELDS, ids=[f"{p} {n}" for p, _, n in UNKNOWN_FIELDS]
)
def test_an_unknown_body_field_is_a_json_400_naming_it_and_nothing_is_written(
    admin: Client, path: str, body: Callable[[dict[str, Any]], dict[str, Any]], named: str
) -> None:
    label = unique_label()

    response = admin.http.post(path, json=body({**GOOD, "labels": label}))

    assert response.status_code == 400, response.text
    assert response.json()["code"] == 3
    assert response.json()["message"].startswith(f"{named}: unknown field"), response.json()
    listed = admin.http.get("/v1/tasks", params={"label": f"test={label['test']}"}).json()
    assert listed["tasks"] == []


def test_a_body_that_is_no_json_object_is_a_json_400_saying_so(admin: Client) -> None:
    response = admin.http.post(
        "/v1/tasks", content=b"[1]", headers={"content-type": "application/json"}
    )

    assert response.status_code == 400, response.text
    assert response.json() == {
        "code": 3,
        "message": "body: must be a JSON object (TaskSpec), got an array",
    }


def test_an_unknown_query_parameter_is_a_400(admin: Client) -> None:
    response = admin.http.get("/v1/tasks", params={"pagesize": 5})

    assert response.status_code == 400


def test_a_query_parameter_of_one_value_given_twice_is_a_400_naming_it(admin: Client) -> None:
    # The transcoder would keep the last value: a list of RUNNING tasks only.
    query = {"status": ["TASK_STATUS_QUEUED", "TASK_STATUS_RUNNING"]}
    response = admin.http.get("/v1/tasks", params=query)

    assert response.status_code == 400, response.text
    assert response.json()["message"] == "status: takes one value, got 2; give it once"


def test_an_oversized_body_is_refused_and_nothing_is_written(admin: Client) -> None:
    label = unique_label()
    spec = {**GOOD, "labels": {**label, "padding": "x" * (2 * 1024 * 1024)}}

    response = admin.http.post("/v1/tasks", json=spec)

    assert response.status_code == 413
    listed = admin.http.get("/v1/tasks", params={"label": f"test={label['test']}"}).json()
    assert listed["tasks"] == []


@pytest.mark.parametrize(
    ("size", "status"), [(MAX_REQUEST_BYTES, 400), (MAX_REQUEST_BYTES + 1, 413)]
)
def test_a_body_up_to_the_limit_reaches_the_api_and_one_byte_more_is_413(
    admin: Client, size: int, status: int
) -> None:
    # Padded with JSON whitespace to the byte; the spec's own fault (timeoutMs)
    # shows that the scheduler read it.
    spec = json.dumps({**GOOD, "labels": unique_label(), "timeoutMs": 5}).encode()
    body = spec + b" " * (size - len(spec))

    response = admin.http.post(
        "/v1/tasks", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["message"].startswith("timeoutMs")


# The HTTP path of every List RPC that pages.
PAGED_LISTS = [
    "/v1/tasks",
    "/v1/artifacts",
    "/v1/sessions",
    "/v1/deadLetters",
    "/v1/auditRecords",
    "/v1/baselines",
    "/v1/profiles",
]


@pytest.mark.parametrize("path", PAGED_LISTS)
@pytest.mark.parametrize(
    ("query", "field"),
    [({"pageToken": "garbage!"}, "pageToken"), ({"pageSize": "1001"}, "pageSize")],
    ids=["token", "size"],
)
def test_a_bad_page_token_or_size_is_a_400_naming_its_json_field(
    admin: Client, path: str, query: dict[str, str], field: str
) -> None:
    response = admin.http.get(path, params=query)

    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"{field}: "), response.text


def test_an_unknown_path_is_a_404(admin: Client) -> None:
    assert admin.http.get("/v1/nothing-here").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/tasks", "GET, POST"),
        ("GET", "/v1/tasks:batchCreate", "POST"),
        ("GET", "/v1/tasks/tsk_1:cancel", "POST"),
        ("PUT", "/v1/apiKeys/key_1", "DELETE, PATCH"),
    ],
)
def test_a_known_path_asked_with_another_method_is_a_405_naming_those_it_takes(
    admin: Client, method: str, path: str, allow: str
) -> None:
    response = admin.http.request(method, path)

    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    assert response.json() == {
        "code": 12,
        "message": f"method: {method} is not allowed on {path}; it takes {allow}",
    }


def test_a_body_naming_another_object_than_the_path_is_a_400_and_acts_on_neither(
    admin: Client,
) -> None:
    label = unique_label()
    # A region no agent serves: both stay queued, so a cancel would show.
    spec = {**GOOD, "region": "nowhere", "labels": label}
    queued = admin.http.post("/v1/tasks", json=spec).json()
    other = admin.http.post("/v1/tasks", json=spec).json()

    # The path names `other`; a body naming `queued` must not turn the call onto it.
    response = admin.http.post(f"/v1/tasks/{other['id']}:cancel", json={"id": queued["id"]})

    assert response.status_code == 400, response.text
    assert "of the field id is conflicting" in response.json()["message"], response.json()
    for task in (queued, other):
        status = admin.http.get(f"/v1/tasks/{task['id']}").json()["status"]
        assert status == "TASK_STATUS_QUEUED", (task["id"], status)
    # The same id in both is no conflict.
    same = admin.http.post(f"/v1/tasks/{other['id']}:cancel", json={"id": other["id"]})
    assert same.status_code == 200, same.text
    assert same.json()["status"] == "TASK_STATUS_CANCELLED"
