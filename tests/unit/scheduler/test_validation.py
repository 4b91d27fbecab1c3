"""TaskSpec validation: every rule names its field as users send it, and defaults are filled."""

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from farm_core.timestamps import from_timestamp, to_timestamp
from farm_scheduler.validation import validate_spec

CAP = 10
DEFAULT_TIMEOUT_MS = 30000


def spec(**fields: Any) -> tasks_pb2.TaskSpec:
    """A TaskSpec from its JSON form; a screenshot of example.com unless told otherwise."""
    body: dict[str, Any] = {"url": "https://example.com/", "screenshot": {}}
    body.update(fields)
    return json_format.ParseDict(
        {k: v for k, v in body.items() if v is not None}, tasks_pb2.TaskSpec()
    )


def validate(task_spec: tasks_pb2.TaskSpec, cap: int = CAP) -> tasks_pb2.TaskSpec:
    return validate_spec(task_spec, max_attempts_cap=cap, default_timeout_ms=DEFAULT_TIMEOUT_MS)


def with_raw(change: Callable[[tasks_pb2.TaskSpec], None], **fields: Any) -> tasks_pb2.TaskSpec:
    """A spec changed in ways JSON cannot say (an enum number no name has)."""
    task_spec = spec(**fields)
    change(task_spec)
    return task_spec


def steps(count: int) -> list[dict[str, str]]:
    return [{"click": f"#b{i}"} for i in range(count)]


INVALID: list[tuple[str, tasks_pb2.TaskSpec, str]] = [
    ("url missing", spec(url=None), "url"),
    ("url too long", spec(url="https://example.com/" + "a" * 2030), "url"),
    ("url not http", spec(url="ftp://example.com/file"), "url"),
    ("url javascript", spec(url="javascript:alert(1)"), "url"),
    ("url file", spec(url="file:///etc/passwd"), "url"),
    ("url without host", spec(url="https:///path"), "url"),
    ("url with spaces", spec(url="https://exa mple.com/"), "url"),
    ("url with a bad port", spec(url="https://example.com:99999/"), "url"),
    ("no action", spec(screenshot=None), "spec"),
    ("two actions", spec(pdf={}), "spec"),
    ("quality without jpeg", spec(screenshot={"quality": 50}), "screenshot.quality"),
    (
        "quality with png",
        spec(screenshot={"format": "IMAGE_FORMAT_PNG", "quality": 50}),
        "screenshot.quality",
    ),
    (
        "jpeg quality above 100",
        spec(screenshot={"format": "IMAGE_FORMAT_JPEG", "quality": 101}),
        "screenshot.quality",
    ),
    (
        "jpeg quality negative",
        spec(screenshot={"format": "IMAGE_FORMAT_JPEG", "quality": -1}),
        "screenshot.quality",
    ),
    (
        "screenshot selector too long",
        spec(screenshot={"selector": "a" * 1001}),
        "screenshot.selector",
    ),
    (
        "unknown image format",
        with_raw(lambda s: setattr(s.screenshot, "format", 9)),
        "screenshot.format",
    ),
    ("unknown paper format", spec(screenshot=None, pdf={"paperFormat": "B5"}), "pdf.paperFormat"),
    (
        "unknown content format",
        with_raw(lambda s: setattr(s.content, "format", 9), screenshot=None, content={}),
        "content.format",
    ),
    ("extract without fields", spec(screenshot=None, extract={}), "extract.fields"),
    (
        "extract with too many fields",
        spec(screenshot=None, extract={"fields": {f"f{i}": "h1" for i in range(101)}}),
        "extract.fields",
    ),
    (
        "extract field without a name",
        spec(screenshot=None, extract={"fields": {"": "h1"}}),
        "extract.fields",
    ),
    (
        "extract field without a selector",
        spec(screenshot=None, extract={"fields": {"title": ""}}),
        "extract.fields.title",
    ),
    (
        "extract selector too long",
        spec(screenshot=None, extract={"fields": {"title": "a" * 1001}}),
        "extract.fields.title",
    ),
    ("script without source", spec(screenshot=None, script={}), "script.source"),
    (
        "script too long",
        spec(screenshot=None, script={"source": "x" * 100001}),
        "script.source",
    ),
    ("too many steps", spec(steps=steps(51)), "steps"),
    ("empty step", spec(steps=[{"click": "#a"}, {}]), "steps[1]"),
    ("step with two kinds", spec(steps=[{"click": "#a", "press": "Enter"}]), "steps[0]"),
    ("click selector too long", spec(steps=[*steps(2), {"click": "a" * 1001}]), "steps[2].click"),
    ("waitFor selector too long", spec(steps=[{"waitFor": "a" * 1001}]), "steps[0].waitFor"),
    ("scroll selector too long", spec(steps=[{"scroll": "a" * 1001}]), "steps[0].scroll"),
    ("press key too long", spec(steps=[{"press": "K" * 101}]), "steps[0].press"),
    ("fill without selector", spec(steps=[{"fill": {"value": "x"}}]), "steps[0].fill.selector"),
    (
        "fill selector too long",
        spec(steps=[{"fill": {"selector": "a" * 1001, "value": "x"}}]),
        "steps[0].fill.selector",
    ),
    (
        "fill value too long",
        spec(steps=[{"fill": {"selector": "#q", "value": "x" * 10001}}]),
        "steps[0].fill.value",
    ),
    ("viewport width zero", spec(viewport={"width": 0, "height": 800}), "viewport.width"),
    ("viewport width too big", spec(viewport={"width": 10001, "height": 800}), "viewport.width"),
    ("viewport height missing", spec(viewport={"width": 1280}), "viewport.height"),
    ("viewport height too big", spec(viewport={"width": 1, "height": 10001}), "viewport.height"),
    ("device name too long", spec(device="d" * 101), "device"),
    ("unknown waitUntil", with_raw(lambda s: setattr(s, "wait_until", 9)), "waitUntil"),
    ("timeout below a second", spec(timeoutMs=999), "timeoutMs"),
    ("timeout above five minutes", spec(timeoutMs=300001), "timeoutMs"),
    ("timeout negative", spec(timeoutMs=-1), "timeoutMs"),
    ("attempts above the cap", spec(maxAttempts=CAP + 1), "maxAttempts"),
    ("attempts negative", spec(maxAttempts=-1), "maxAttempts"),
    ("unknown priority", with_raw(lambda s: setattr(s, "priority", 9)), "priority"),
    ("region upper case", spec(region="EU"), "region"),
    ("region starting with a dash", spec(region="-eu"), "region"),
    ("region too long", spec(region="r" * 33), "region"),
    ("region with a dot", spec(region="eu.west"), "region"),
    ("too many labels", spec(labels={f"k{i}": "v" for i in range(33)}), "labels"),
    ("label key upper case", spec(labels={"Job": "x"}), "labels"),
    ("label key too long", spec(labels={"k" * 64: "x"}), "labels"),
    ("label key empty", spec(labels={"": "x"}), "labels"),
    ("label value too long", spec(labels={"job": "v" * 257}), "labels"),
    ("idempotency key too long", spec(idempotencyKey="k" * 129), "idempotencyKey"),
]


@pytest.mark.parametrize(
    ("task_spec", "field"), [(s, f) for _, s, f in INVALID], ids=[name for name, _, _ in INVALID]
)
def test_invalid_spec_is_refused_naming_the_field(
    task_spec: tasks_pb2.TaskSpec, field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ")


def test_two_actions_error_lists_the_actions_set() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(spec(pdf={}, content={}))
    assert "screenshot, pdf, content" in caught.value.message


def test_spec_without_action_says_none_was_set() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(spec(screenshot=None))
    assert "got none" in caught.value.message


# What a spec of spec() is stored as: its screenshot and every default filled in.
STORED: dict[str, Any] = {
    "screenshot": {"format": "IMAGE_FORMAT_PNG"},
    "priority": "PRIORITY_NORMAL",
    "waitUntil": "WAIT_UNTIL_LOAD",
    "timeoutMs": DEFAULT_TIMEOUT_MS,
    "maxAttempts": 3,
    "viewport": {"width": 1280, "height": 800},
}

# (what is valid, the fields sent, the fields stored beyond the defaults and those sent)
VALID: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("http url", {"url": "http://example.com"}, {}),
    ("url with port and query", {"url": "https://example.com:8443/a?b=c#d"}, {}),
    ("url of 2048 characters", {"url": "https://example.com/" + "a" * 2028}, {}),
    ("jpeg quality 1", {"screenshot": {"format": "IMAGE_FORMAT_JPEG", "quality": 1}}, {}),
    ("jpeg quality 100", {"screenshot": {"format": "IMAGE_FORMAT_JPEG", "quality": 100}}, {}),
    (
        "selector of 1000 characters",
        {"screenshot": {"selector": "a" * 1000}},
        {"screenshot": {"selector": "a" * 1000, "format": "IMAGE_FORMAT_PNG"}},
    ),
    ("50 steps", {"steps": steps(50)}, {}),
    (
        "every kind of step",
        {
            "steps": [
                {"click": "#accept"},
                {"fill": {"selector": "#q", "value": ""}},
                {"waitFor": "#results"},
                {"press": "Enter"},
                {"scroll": "bottom"},
            ]
        },
        {},
    ),
    (
        "100 extract fields",
        {"screenshot": None, "extract": {"fields": {f"f{i}": "h1" for i in range(100)}}},
        {},
    ),
    (
        "script of 100000 characters",
        {"screenshot": None, "script": {"source": "x" * 100000}},
        {},
    ),
    ("smallest viewport", {"viewport": {"width": 1, "height": 1}}, {}),
    ("largest viewport", {"viewport": {"width": 10000, "height": 10000}}, {}),
    ("shortest timeout", {"timeoutMs": 1000}, {}),
    ("longest timeout", {"timeoutMs": 300000}, {}),
    ("attempts at the cap", {"maxAttempts": CAP}, {}),
    ("one attempt", {"maxAttempts": 1}, {}),
    ("region", {"region": "eu-west-1"}, {}),
    ("region of 32 characters", {"region": "r" * 32}, {}),
    ("32 labels", {"labels": {f"k{i}": "v" * 256 for i in range(32)}}, {}),
    ("label key with dots", {"labels": {"team.owner_1-x": "a"}}, {}),
    ("idempotency key of 128 characters", {"idempotencyKey": "k" * 128}, {}),
]


@pytest.mark.parametrize(
    ("sent", "stored"), [(f, s) for _, f, s in VALID], ids=[name for name, _, _ in VALID]
)
def test_valid_spec_is_stored_as_sent_with_the_defaults_filled_in(
    sent: dict[str, Any], stored: dict[str, Any]
) -> None:
    assert validate(spec(**sent)) == spec(**{**STORED, **sent, **stored})


def test_defaults_are_filled_in() -> None:
    checked = validate(spec())
    assert checked.priority == tasks_pb2.PRIORITY_NORMAL
    assert checked.wait_until == tasks_pb2.WAIT_UNTIL_LOAD
    assert checked.timeout_ms == DEFAULT_TIMEOUT_MS
    assert checked.max_attempts == 3
    assert (checked.viewport.width, checked.viewport.height) == (1280, 800)
    assert checked.screenshot.format == tasks_pb2.IMAGE_FORMAT_PNG
    assert checked.screenshot.quality == 0


def test_given_values_are_kept() -> None:
    checked = validate(
        spec(
            priority="PRIORITY_HIGH",
            waitUntil="WAIT_UNTIL_NETWORKIDLE",
            timeoutMs=5000,
            maxAttempts=7,
            viewport={"width": 390, "height": 844},
            region="eu",
            labels={"job": "nightly"},
        )
    )
    assert checked.priority == tasks_pb2.PRIORITY_HIGH
    assert checked.wait_until == tasks_pb2.WAIT_UNTIL_NETWORKIDLE
    assert (checked.timeout_ms, checked.max_attempts) == (5000, 7)
    assert (checked.viewport.width, checked.viewport.height) == (390, 844)
    assert (checked.region, dict(checked.labels)) == ("eu", {"job": "nightly"})


def test_named_device_gets_no_default_viewport() -> None:
    checked = validate(spec(device="iPhone 13"))
    assert not checked.HasField("viewport")


def test_default_attempts_stay_within_a_lower_cap() -> None:
    assert validate(spec(), cap=2).max_attempts == 2


def test_jpeg_quality_defaults_to_80() -> None:
    checked = validate(spec(screenshot={"format": "IMAGE_FORMAT_JPEG"}))
    assert checked.screenshot.quality == 80


@pytest.mark.parametrize(
    ("given", "stored"), [("", "A4"), ("letter", "Letter"), ("a3", "A3"), ("TABLOID", "Tabloid")]
)
def test_paper_format_is_case_insensitive_and_defaults_to_a4(given: str, stored: str) -> None:
    checked = validate(spec(screenshot=None, pdf={"paperFormat": given}))
    assert checked.pdf.paper_format == stored


def test_content_format_defaults_to_html() -> None:
    checked = validate(spec(screenshot=None, content={}))
    assert checked.content.format == tasks_pb2.CONTENT_FORMAT_HTML


def test_validation_leaves_the_request_unchanged() -> None:
    original = spec()
    validate(original)
    assert original == spec()


NOW = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)


def with_deadline(ahead: dt.timedelta) -> tasks_pb2.TaskSpec:
    task_spec = spec()
    task_spec.deadline.CopyFrom(to_timestamp(NOW + ahead))
    return task_spec


def validate_at_noon(task_spec: tasks_pb2.TaskSpec) -> tasks_pb2.TaskSpec:
    return validate_spec(
        task_spec, max_attempts_cap=CAP, default_timeout_ms=DEFAULT_TIMEOUT_MS, now=NOW
    )


@pytest.mark.parametrize(
    "ahead",
    [dt.timedelta(seconds=1), dt.timedelta(hours=1), dt.timedelta(hours=24)],
    ids=["a second", "an hour", "a day"],
)
def test_deadline_up_to_24_hours_ahead_is_kept(ahead: dt.timedelta) -> None:
    checked = validate_at_noon(with_deadline(ahead))
    assert from_timestamp(checked.deadline) == NOW + ahead


@pytest.mark.parametrize(
    ("ahead", "problem"),
    [
        (dt.timedelta(0), "must be in the future"),
        (dt.timedelta(minutes=-5), "must be in the future"),
        (dt.timedelta(hours=24, seconds=1), "must be at most 24 hours ahead"),
    ],
    ids=["now", "past", "beyond a day"],
)
def test_deadline_outside_the_next_24_hours_is_refused(ahead: dt.timedelta, problem: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_at_noon(with_deadline(ahead))
    assert caught.value.field == "deadline"
    assert caught.value.message.startswith(f"deadline: {problem}")


def test_deadline_that_is_no_valid_time_is_refused() -> None:
    task_spec = spec()
    task_spec.deadline.seconds = 2**62
    with pytest.raises(InvalidArgument) as caught:
        validate_at_noon(task_spec)
    assert caught.value.field == "deadline"


def test_no_deadline_stays_unset() -> None:
    assert not validate_at_noon(spec()).HasField("deadline")


def test_a_screencast_without_a_format_is_stored_as_webm_and_a_given_one_is_kept() -> None:
    assert validate(spec(screencast={})).screencast.format == tasks_pb2.VIDEO_FORMAT_WEBM
    checked = validate(spec(screencast={"format": "VIDEO_FORMAT_GIF"}))
    assert checked.screencast.format == tasks_pb2.VIDEO_FORMAT_GIF
    assert not validate(spec()).HasField("screencast")


def test_a_screencast_format_no_name_has_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(with_raw(lambda s: setattr(s.screencast, "format", 99)))
    assert caught.value.field == "screencast.format"
