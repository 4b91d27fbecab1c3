"""Unknown fields and wrong values of an HTTP/JSON body, named by JSON path before Envoy."""

import json
from typing import Any

import pytest

from farm_auth.json_body import BodyFields, BodyRefusal, RefusedItems, too_many
from farm_auth.route_table import RouteTable
from tests.transcoder_values import (
    GARBLED_BY_THE_TRANSCODER,
    LEFT_TO_THE_TRANSCODER,
    SPEC,
    TRANSCODER_REFUSES,
    TRANSCODER_TAKES,
)

FIELDS = BodyFields()
ROUTES = RouteTable()


def unknown(method: str, path: str, body: dict[str, Any]) -> str | None:
    refused = FIELDS.refusal(method, ROUTES.lookup(path), json.dumps(body).encode())
    assert refused is None or isinstance(refused, BodyRefusal), refused
    assert refused is None or refused.outcome == "unknown_field", refused
    return None if refused is None else refused.message


def bad_value(body: dict[str, Any], path: str = "/v1/tasks") -> str | None:
    refused = FIELDS.refusal("POST", ROUTES.lookup(path), json.dumps(body).encode())
    assert refused is None or isinstance(refused, BodyRefusal), refused
    assert refused is None or refused.outcome == "bad_value", refused
    return None if refused is None else refused.message


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("/v1/tasks", {**SPEC, "cacheTtlSecond": 5}, "cacheTtlSecond: "),
        ("/v1/tasks", {**SPEC, "screenshot": {"fullPag": True}}, "screenshot.fullPag: "),
        ("/v1/tasks:run", {"spec": SPEC}, "spec: "),
        ("/v1/tasks", {**SPEC, "steps": [{"click": "a"}, {"klick": "b"}]}, "steps[1].klick: "),
        ("/v1/tasks:batchCreate", {"requests": [SPEC], "requestz": []}, "requestz: "),
        ("/v1/sessions/ses_1:run", {"goto": {"url": "x"}}, "goto: "),
        ("/v1/apiKeys/key_1?x=1", {"rateLimitPerSecond": 5, "burst": 9}, "burst: "),
        # A rule with no body: the transcoder reads the body as the request all the same.
        ("/v1/sessions/ses_1:close", {"reason": "done"}, "reason: "),
        ("/v1/tasks/tsk_1:cancel", {"id": "tsk_1", "why": "x"}, "why: "),
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


@pytest.mark.parametrize("body", [{}, {"id": "ses_1"}])
def test_a_bodiless_rules_request_fields_pass(body: dict[str, Any]) -> None:
    assert unknown("POST", "/v1/sessions/ses_1:close", body) is None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/nothing", b'{"x": 1}'),  # no such RPC: the transcoder says so
        ("GET", "/v1/tasks", b'{"x": 1}'),  # no body binding
    ],
)
def test_what_is_not_an_rpcs_json_object_is_left_to_the_transcoder(
    method: str, path: str, body: bytes
) -> None:
    assert FIELDS.refusal(method, ROUTES.lookup(path), body) is None


def test_a_fault_in_the_check_leaves_the_body_to_the_transcoder(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(value: object, field: object) -> str | None:
        raise ValueError("a value the check cannot read")

    monkeypatch.setattr("farm_auth.json_body.scalar_problem", broken)
    assert FIELDS.refusal("POST", ROUTES.lookup("/v1/tasks"), b'{"timeoutMs": 5}') is None
    assert "the body check of POST /v1/tasks failed" in caplog.text


@pytest.mark.parametrize(
    "path", ["/v1/tasks", "/v1/tasks:run", "/v1/sessions", "/v1/sessions/s:run"]
)
def test_a_null_body_field_is_its_default_as_the_transcoder_takes_it(path: str) -> None:
    assert FIELDS.refusal("POST", ROUTES.lookup(path), b"null") is None


def test_a_null_request_is_named_so() -> None:
    refused = FIELDS.refusal("POST", ROUTES.lookup("/v1/apiKeys"), b"null")
    assert isinstance(refused, BodyRefusal)
    assert refused.message == "body: must be a JSON object (CreateApiKeyRequest), got null"


@pytest.mark.parametrize(
    ("body", "kind"), [(b"[1, 2]", "an array"), (b'"x"', "a string"), (b"7", "a number")]
)
def test_a_body_that_is_no_json_object_is_named_so(body: bytes, kind: str) -> None:
    refused = FIELDS.refusal("POST", ROUTES.lookup("/v1/tasks"), body)
    assert isinstance(refused, BodyRefusal)
    assert refused.message == f"body: must be a JSON object (TaskSpec), got {kind}"


@pytest.mark.parametrize(("fields", "message"), TRANSCODER_REFUSES)
def test_a_value_the_transcoder_refuses_is_named_by_its_json_path(
    fields: dict[str, Any], message: str
) -> None:
    refused = bad_value({**SPEC, **fields})
    assert refused is not None and refused.startswith(message), refused


@pytest.mark.parametrize("fields", TRANSCODER_TAKES + LEFT_TO_THE_TRANSCODER)
def test_a_value_the_transcoder_takes_or_judges_passes(fields: dict[str, Any]) -> None:
    assert bad_value({**SPEC, **fields}) is None


@pytest.mark.parametrize(("fields", "message"), GARBLED_BY_THE_TRANSCODER)
def test_a_value_the_transcoder_garbles_is_named_by_its_json_path(
    fields: dict[str, Any], message: str
) -> None:
    assert bad_value({**SPEC, **fields}) == message


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("POST", "/v1/tasks", b'{"spec": ', "expecting value at line 1 column 10"),
        ("POST", "/v1/tasks:run", b'{"url": "x"} {}', "extra data at line 1 column 14"),
        (
            "POST",
            "/v1/tasks:batchCreate",
            b'{"requests": [}',
            "expecting value at line 1 column 15",
        ),
        ("POST", "/v1/tasks/tsk_1:cancel", b"[", "expecting value at line 1 column 2"),
        ("POST", "/v1/sessions", b"{'viewport': {}}", "expecting property name enclosed in"),
        ("POST", "/v1/sessions/ses_1:run", b'{"steps": [],}', "expecting property name"),
        ("PATCH", "/v1/apiKeys/key_1", b'{"burst": 5 "x"}', "expecting ',' delimiter at line 1"),
        ("PATCH", "/v1/tenants/acme/limits", b"  \n", "empty (only white space); send"),
        ("DELETE", "/v1/artifacts/art_1", b"{", "expecting property name enclosed"),
        # The transcoder reads a GET's body too.
        ("GET", "/v1/whoami?x=1", b"{", "expecting property name enclosed"),
        ("POST", "/v1/tasks", b'{"timeoutMs": NaN}', "NaN is not a JSON value"),
        ("POST", "/v1/tasks", b'{"url": "\xff"}', "not UTF-8 (byte 0xff at offset 9)"),
        ("POST", "/v1/tasks", b"\xef\xbb\xbf{}", "starts with a byte order mark (BOM)"),
        ("POST", "/v1/tasks", '{"timeoutMs": 5}'.encode("utf-16"), "not UTF-8 (byte 0xff at"),
        ("POST", "/v1/tasks", b'{"labels": {"a": "\\ud800"}}', "a string holds a lone UTF-16"),
    ],
)
def test_a_body_that_is_not_json_is_refused_as_the_body_on_every_route(
    method: str, path: str, body: bytes, message: str
) -> None:
    refused = FIELDS.refusal(method, ROUTES.lookup(path), body)
    assert isinstance(refused, BodyRefusal) and refused.outcome == "bad_json", refused
    assert refused.message.startswith(f"body: not valid JSON: {message}"), refused.message


@pytest.mark.parametrize(
    "body",
    [
        # Raw control characters in a string, and a surrogate pair: the transcoder takes them.
        b'{"url": "http://a.test/", "labels": {"a": "x\x01y"}}',
        b'{"url": "http://a.test/", "labels": {"a": "\\ud83d\\ude00"}}',
        b"",
    ],
)
def test_json_the_transcoder_takes_is_not_refused_as_malformed(body: bytes) -> None:
    assert FIELDS.refusal("POST", ROUTES.lookup("/v1/tasks"), body) is None


def test_a_path_that_names_no_rpc_is_left_to_the_transcoder_whatever_its_body() -> None:
    assert FIELDS.refusal("POST", ROUTES.lookup("/v1/nothing"), b"{") is None


def test_a_batchs_items_with_unknown_fields_are_named_by_index_and_the_body_passes() -> None:
    items = [
        SPEC,
        {**SPEC, "ulr": "x"},
        None,  # no item, as the transcoder takes it: the next is item 2
        {**SPEC, "screenshot": {"fullPag": True}, "zzz": 1},
    ]
    body = json.dumps({"requests": items}).encode()

    refused = FIELDS.refusal("POST", ROUTES.lookup("/v1/tasks:batchCreate"), body)

    assert refused == RefusedItems(
        {
            1: ("ulr", "unknown field, TaskSpec has no field 'ulr'; did you mean 'url'?"),
            2: (
                "screenshot.fullPag",
                "unknown field, ScreenshotOptions has no field 'fullPag'; did you mean 'fullPage'?",
            ),
        }
    )


def test_a_wrong_value_in_a_batch_item_still_refuses_the_batch_as_the_transcoder_would() -> None:
    items = [{**SPEC, "ulr": "x"}, {**SPEC, "zzz": 1, "timeoutMs": "soon"}]
    body = json.dumps({"requests": items}).encode()

    refused = FIELDS.refusal("POST", ROUTES.lookup("/v1/tasks:batchCreate"), body)

    assert isinstance(refused, BodyRefusal) and refused.outcome == "bad_value"
    assert refused.message.startswith("requests[1].timeoutMs: ")


def test_too_many_refused_items_name_the_first_and_count_the_others() -> None:
    refused = RefusedItems({4: ("a", "unknown field"), 9: ("b", "unknown field")})

    assert too_many(refused) == (
        "requests[4].a: unknown field (and 1 more items have unknown fields of their own, "
        "too many to answer item by item; nothing was queued)"
    )
