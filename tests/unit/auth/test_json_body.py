"""Unknown fields of an HTTP/JSON body, named before the transcoder would drop them."""

import json
from typing import Any

import pytest

from farm_auth.json_body import BodyFields

FIELDS = BodyFields()
SPEC: dict[str, Any] = {"url": "https://example.com", "screenshot": {"fullPage": True}}


def unknown(method: str, path: str, body: dict[str, Any]) -> str | None:
    return FIELDS.unknown_field(method, path, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("/v1/tasks", {**SPEC, "cacheTtlSecond": 5}, "cacheTtlSecond: "),
        ("/v1/tasks", {**SPEC, "screenshot": {"fullPag": True}}, "screenshot.fullPag: "),
        ("/v1/tasks:run", {"spec": SPEC}, "spec: "),
        ("/v1/tasks", {**SPEC, "steps": [{"click": "a"}, {"klick": "b"}]}, "steps[1].klick: "),
        ("/v1/tasks:batchCreate", {"requests": [SPEC, {**SPEC, "ulr": "x"}]}, "requests[1].ulr: "),
        ("/v1/sessions/ses_1:run", {"goto": {"url": "x"}}, "goto: "),
        ("/v1/apiKeys/key_1?x=1", {"rateLimitPerSecond": 5, "burst": 9}, "burst: "),
    ],
)
def test_the_first_unknown_field_is_named_by_its_json_path(
    path: str, body: dict[str, Any], named: str
) -> None:
    method = "PATCH" if path.startswith("/v1/apiKeys/") else "POST"
    message = unknown(method, path, body)
    assert message is not None and message.startswith(named), message


def test_a_near_miss_names_the_field_meant() -> None:
    assert unknown("POST", "/v1/tasks", {**SPEC, "cacheTtlSecond": 5}) == (
        "cacheTtlSecond: unknown field, TaskSpec has no field 'cacheTtlSecond'; "
        "did you mean 'cacheTtlSeconds'?"
    )


@pytest.mark.parametrize(
    "body",
    [
        # Proto names as well as JSON names; map keys and well-known types are free.
        {**SPEC, "timeout_ms": 5000, "labels": {"any-key": "v"}},
        {**SPEC, "deadline": "2030-01-01T00:00:00Z", "steps": [{"click": "a"}]},
        {**SPEC, "setup": {"extraHeaders": {"x-anything": "1"}}, "viewport": None},
    ],
)
def test_known_fields_pass(body: dict[str, Any]) -> None:
    assert unknown("POST", "/v1/tasks", body) is None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/tasks", b'{"url": '),  # not JSON: the transcoder says so
        ("POST", "/v1/nothing", b'{"x": 1}'),  # no such RPC: the transcoder says so
        ("GET", "/v1/tasks", b'{"x": 1}'),  # no body binding
        ("POST", "/v1/tasks", b"  "),
    ],
)
def test_what_is_not_an_rpcs_json_object_is_left_to_the_transcoder(
    method: str, path: str, body: bytes
) -> None:
    assert FIELDS.unknown_field(method, path, body) is None


@pytest.mark.parametrize(
    ("body", "kind"), [(b"[1, 2]", "an array"), (b'"x"', "a string"), (b"7", "a number")]
)
def test_a_body_that_is_no_json_object_is_named_so(body: bytes, kind: str) -> None:
    assert FIELDS.unknown_field("POST", "/v1/tasks", body) == (
        f"body: must be a JSON object (TaskSpec), got {kind}"
    )
