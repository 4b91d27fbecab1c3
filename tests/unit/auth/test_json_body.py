"""Unknown fields and wrong values of an HTTP/JSON body, named by JSON path before Envoy."""

import json
from typing import Any

import pytest

from farm_auth.json_body import BodyFields

FIELDS = BodyFields()
SPEC: dict[str, Any] = {"url": "https://example.com", "screenshot": {"fullPage": True}}


def unknown(method: str, path: str, body: dict[str, Any]) -> str | None:
    refused = FIELDS.refusal(method, path, json.dumps(body).encode())
    assert refused is None or refused.outcome == "unknown_field", refused
    return None if refused is None else refused.message


def bad_value(body: dict[str, Any], path: str = "/v1/tasks") -> str | None:
    refused = FIELDS.refusal("POST", path, json.dumps(body).encode())
    assert refused is None or refused.outcome == "bad_value", refused
    return None if refused is None else refused.message


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
        # Not JSON as the transcoder reads it (UTF-8, no NaN), though Python's json takes it.
        ("POST", "/v1/tasks", '{"timeoutMs": "abc"}'.encode("utf-16")),
        ("POST", "/v1/tasks", b'{"timeoutMs": NaN}'),
        ("POST", "/v1/tasks", b'\xef\xbb\xbf{"timeoutMs": "abc"}'),
    ],
)
def test_what_is_not_an_rpcs_json_object_is_left_to_the_transcoder(
    method: str, path: str, body: bytes
) -> None:
    assert FIELDS.refusal(method, path, body) is None


def test_a_fault_in_the_check_leaves_the_body_to_the_transcoder(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(value: object, field: object) -> str | None:
        raise ValueError("a value the check cannot read")

    monkeypatch.setattr("farm_auth.json_body.scalar_problem", broken)
    assert FIELDS.refusal("POST", "/v1/tasks", b'{"timeoutMs": 5}') is None
    assert "the body check of POST /v1/tasks failed" in caplog.text


@pytest.mark.parametrize(
    "path", ["/v1/tasks", "/v1/tasks:run", "/v1/sessions", "/v1/sessions/s:run"]
)
def test_a_null_body_field_is_its_default_as_the_transcoder_takes_it(path: str) -> None:
    assert FIELDS.refusal("POST", path, b"null") is None


def test_a_null_request_is_named_so() -> None:
    refused = FIELDS.refusal("POST", "/v1/apiKeys", b"null")
    assert refused is not None
    assert refused.message == "body: must be a JSON object (CreateApiKeyRequest), got null"


@pytest.mark.parametrize(
    ("body", "kind"), [(b"[1, 2]", "an array"), (b'"x"', "a string"), (b"7", "a number")]
)
def test_a_body_that_is_no_json_object_is_named_so(body: bytes, kind: str) -> None:
    refused = FIELDS.refusal("POST", "/v1/tasks", body)
    assert refused is not None
    assert refused.message == f"body: must be a JSON object (TaskSpec), got {kind}"


# Values Envoy's transcoder refuses, naming the field by its proto path (spec.timeout_ms),
# or by none (`spec: Proto field is not repeating, cannot start list.`); held to the
# real transcoder by tests/integration/cli/test_envoy_json_values.py, as the lists below.
TRANSCODER_REFUSES: list[tuple[dict[str, Any], str]] = [
    ({"timeoutMs": "abc"}, 'timeoutMs: must be a whole number (int32), got "abc"'),
    ({"timeoutMs": 1.5}, "timeoutMs: must be a whole number (int32), got 1.5"),
    ({"timeoutMs": True}, "timeoutMs: must be a whole number (int32), got true"),
    ({"timeoutMs": "1e4"}, 'timeoutMs: must be a whole number (int32), got "1e4"'),
    ({"timeoutMs": ""}, 'timeoutMs: must be a whole number (int32), got ""'),
    ({"timeoutMs": []}, "timeoutMs: must be a number, got an array"),
    ({"timeoutMs": {}}, "timeoutMs: must be a number, got an object"),
    (
        {"maxAttempts": 99999999999},
        "maxAttempts: must be a whole number from -2147483648 to 2147483647 (int32), "
        "got 99999999999",
    ),
    ({"url": 5}, "url: must be a string, got 5"),
    ({"device": True}, "device: must be a string, got true"),
    ({"device": ["a"]}, "device: must be a string, got an array"),
    ({"labels": {"a": 5}}, 'labels["a"]: must be a string, got 5'),
    ({"labels": []}, "labels: must be an object of names and their values, got an array"),
    ({"screenshot": {"fullPage": 0}}, "screenshot.fullPage: must be true or false, got 0"),
    ({"screenshot": {"fullPage": ""}}, 'screenshot.fullPage: must be true or false, got ""'),
    ({"screenshot": 5}, "screenshot: must be an object (ScreenshotOptions), got 5"),
    ({"screenshot": [{}]}, "screenshot: must be an object (ScreenshotOptions), got an array"),
    ({"steps": [{"click": "a"}, 5]}, "steps[1]: must be an object (Step), got 5"),
    (
        {"steps": [{"click": "a"}, {"wait": {"ms": "x"}}]},
        'steps[1].wait.ms: must be a whole number (int32), got "x"',
    ),
    ({"steps": [{"back": ""}]}, 'steps[0].back: must be true or false, got ""'),
    (
        {"priority": "HIGH"},
        'priority: must be one of PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_LOW, got "HIGH"; '
        "did you mean 'PRIORITY_HIGH'?",
    ),
    (
        {"priority": True},
        "priority: must be one of PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_LOW, got true",
    ),
    (
        {"priority": 1.5},
        "priority: must be one of PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_LOW, got 1.5",
    ),
    ({"priority": ["PRIORITY_HIGH"]}, "priority: must be one name, got an array"),
    ({"setup": {"blockResources": ["NOPE"]}}, "setup.blockResources[0]: must be one of "),
    (
        {"setup": {"deviceScaleFactor": "abc"}},
        'setup.deviceScaleFactor: must be a number, got "abc"',
    ),
    ({"setup": {"deviceScaleFactor": True}}, "setup.deviceScaleFactor: must be a number, got true"),
    (
        {"setup": {"cookies": [{"name": "a", "value": "b", "expires": "9223372036854775808"}]}},
        "setup.cookies[0].expires: must be a whole number from ",
    ),
    (
        {"deadline": 5},
        'deadline: must be a time as an RFC 3339 string such as "2030-01-01T00:00:00Z", got 5',
    ),
    ({"deadline": []}, "deadline: must be a time as an RFC 3339 string"),
    (
        {"timeoutMs": "9" * 5000},  # more digits than int() takes
        'timeoutMs: must be a whole number from -2147483648 to 2147483647 (int32), got "999',
    ),
    ({"setup": {"deviceScaleFactor": "0x1p99999"}}, "setup.deviceScaleFactor: must be a number"),
    (
        {"priority": 2147483648},
        "priority: must be one of PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_LOW, got 2147483648",
    ),
    ({"setup": {"blockResources": ["1", "-1"]}}, "setup.blockResources[1]: must be one of "),
]
PRIORITIES = "priority: must be one of PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_LOW, got"
FULL_PAGE = "screenshot.fullPage: must be true or false, got"
SCALE = "setup.deviceScaleFactor: must be a number, got"
# The transcoder reads only true/t/yes/y/1 and false/f/no/n/0 as booleans, in any case,
# with nothing around them.
TRANSCODER_REFUSES += [
    ({"screenshot": {"fullPage": text}}, f"{FULL_PAGE} {json.dumps(text)}")
    for text in ["on", "off", "2", "-1", "01", "+1", "1.0", "banana", "yess", " true", "true ",
                 "\ttrue", "1\n"]
]  # fmt: skip
# An enum's number must be an int32; as a string, one of the enum's numbers.
TRANSCODER_REFUSES += [
    ({"priority": number}, f"{PRIORITIES} {json.dumps(number)}")
    for number in [-2147483649, 4294967297, 1e10, 2147483648.0, "-1", "99", "2147483647", "-01",
                   "4294967297"]
]  # fmt: skip
# A double as a string is C's strtod's form, finite, with C's whitespace around it but no
# space first or last; of infinity and NaN, only protobuf JSON's spellings.
TRANSCODER_REFUSES += [
    ({"setup": {"deviceScaleFactor": text}}, f"{SCALE} {json.dumps(text)}")
    for text in [" 1.5", "1.5 ", "\t1.5 ", " \t1.5", "\u00a01.5", "inf", "-inf", "infinity",
                 "INFINITY", "+Infinity", "nan", "NAN", "-NaN", "+NaN", "1_0", "1e999", "-1e999",
                 "1.8e308", " 0x1p3", "0x1p3 ", "\u0661", "\uff11"]
]  # fmt: skip


@pytest.mark.parametrize(("fields", "message"), TRANSCODER_REFUSES)
def test_a_value_the_transcoder_refuses_is_named_by_its_json_path(
    fields: dict[str, Any], message: str
) -> None:
    refused = bad_value({**SPEC, **fields})
    assert refused is not None and refused.startswith(message), refused


# Values the transcoder takes: they must pass here too.
TRANSCODER_TAKES: list[dict[str, Any]] = [
    {"timeoutMs": "+5000"}, {"timeoutMs": "05000"}, {"timeoutMs": 12000.0}, {"timeoutMs": 1e4},
    {"timeoutMs": None}, {"screenshot": {"fullPage": "yes"}}, {"screenshot": {"fullPage": "false"}},
    {"priority": 1}, {"priority": "1"}, {"priority": 1.0}, {"priority": 99}, {"priority": None},
    {"labels": {"a": None}}, {"steps": {"click": "a"}}, {"steps": [[{"click": "a"}]]},
    {"steps": [None]}, {"setup": {"blockResources": "RESOURCE_TYPE_IMAGE"}},
    {"setup": {"deviceScaleFactor": "2"}}, {"setup": {"deviceScaleFactor": "NaN"}},
    {"screenshot": {"compare": {"baseline": "b", "mask": "#a", "threshold": "1e-1"}}},
    {"screenshot": {"compare": {"baseline": "b", "mask": [["#a"], None]}}},
    {"setup": {"cookies": [{"name": "a", "value": "b", "expires": 9223372036854775807}]}},
    {"deadline": {}}, {"deadline": None},
    {"timeoutMs": "0" * 5000 + "5"}, {"setup": {"deviceScaleFactor": "0x1p3"}},
    {"screenshot": {"compare": {"baseline": "b", "threshold": "0x.8"}}},
    {"audit": {"budget": {"cls": "-0X1.8P-2"}}},
    {"priority": 2147483647}, {"priority": -2147483648}, {"priority": -1}, {"priority": -1.0},
    {"priority": 2147483647.0}, {"priority": "0002"}, {"priority": "+2"}, {"priority": "-0"},
    {"priority": "00001"}, {"setup": {"blockResources": ["1", -1]}},
]  # fmt: skip
TRANSCODER_TAKES += [
    {"screenshot": {"fullPage": text}}
    for text in ["true", "TRUE", "tRuE", "t", "T", "yes", "YES", "y", "Y", "1",
                 "false", "False", "f", "F", "no", "nO", "n", "N", "0"]
]  # fmt: skip
TRANSCODER_TAKES += [
    {"setup": {"deviceScaleFactor": text}}
    for text in ["Infinity", "-Infinity", "\t1.5", "1.5\n", "\t 1.5", "1.5 \t", "\r\f\v1.5\n",
                 "\t0x1p3", "1e-999", "1.7976931348623158e308", "0x1.fffffffffffffp1023",
                 "0x1p-99999", "1.", ".5", "-.5", "+1", "00.5", "1E+5", "0x1.p3", "1.5\u0000x"]
]  # fmt: skip


# Values the transcoder refuses, left to it: a time string's form is its to judge.
LEFT_TO_THE_TRANSCODER: list[dict[str, Any]] = [{"deadline": "tomorrow"}]


@pytest.mark.parametrize("fields", TRANSCODER_TAKES + LEFT_TO_THE_TRANSCODER)
def test_a_value_the_transcoder_takes_or_judges_passes(fields: dict[str, Any]) -> None:
    assert bad_value({**SPEC, **fields}) is None


# An object where a map's text belongs: the transcoder takes it, garbling it into bytes
# no service can read, so it is refused here although the transcoder would not.
GARBLED_BY_THE_TRANSCODER: list[tuple[dict[str, Any], str]] = [
    ({"labels": {"a": {}}}, 'labels["a"]: must be a string, got an object'),
]


@pytest.mark.parametrize(("fields", "message"), GARBLED_BY_THE_TRANSCODER)
def test_a_value_the_transcoder_garbles_is_named_by_its_json_path(
    fields: dict[str, Any], message: str
) -> None:
    assert bad_value({**SPEC, **fields}) == message
