"""TaskSpec validation: every rule names its field as users send it, and defaults are filled."""

from collections.abc import Callable
from typing import Any

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from tests.helpers import task_spec
from tests.unit.scheduler.conftest import CAP, DEFAULT_TIMEOUT_MS, validate


def with_raw(change: Callable[[tasks_pb2.TaskSpec], None], **fields: Any) -> tasks_pb2.TaskSpec:
    """A spec changed in ways JSON cannot say (an enum number no name has)."""
    changed = task_spec(**fields)
    change(changed)
    return changed


def steps(count: int) -> list[dict[str, str]]:
    return [{"click": f"#b{i}"} for i in range(count)]


INVALID: list[tuple[str, tasks_pb2.TaskSpec, str]] = [
    ("url missing", task_spec(url=None), "url"),
    ("url too long", task_spec(url="https://example.com/" + "a" * 2030), "url"),
    ("url not http", task_spec(url="ftp://example.com/file"), "url"),
    ("url javascript", task_spec(url="javascript:alert(1)"), "url"),
    ("url file", task_spec(url="file:///etc/passwd"), "url"),
    ("url without host", task_spec(url="https:///path"), "url"),
    ("url with spaces", task_spec(url="https://exa mple.com/"), "url"),
    ("url with a no-break space", task_spec(url="https://example.com/a\u00a0b"), "url"),
    ("url with an ideographic space", task_spec(url="https://example.com/a\u3000b"), "url"),
    ("url with a control character", task_spec(url="https://example.com/a\x07b"), "url"),
    ("url with a bad port", task_spec(url="https://example.com:99999/"), "url"),
    ("url whose host has an empty label", task_spec(url="http://a..b/"), "url"),
    ("no action", task_spec(screenshot=None), "spec"),
    ("two actions", task_spec(pdf={}), "spec"),
    ("quality without jpeg", task_spec(screenshot={"quality": 50}), "screenshot.quality"),
    (
        "quality with png",
        task_spec(screenshot={"format": "IMAGE_FORMAT_PNG", "quality": 50}),
        "screenshot.quality",
    ),
    (
        "jpeg quality above 100",
        task_spec(screenshot={"format": "IMAGE_FORMAT_JPEG", "quality": 101}),
        "screenshot.quality",
    ),
    (
        "jpeg quality negative",
        task_spec(screenshot={"format": "IMAGE_FORMAT_JPEG", "quality": -1}),
        "screenshot.quality",
    ),
    (
        "screenshot selector too long",
        task_spec(screenshot={"selector": "a" * 1001}),
        "screenshot.selector",
    ),
    (
        "unknown image format",
        with_raw(lambda s: setattr(s.screenshot, "format", 9)),
        "screenshot.format",
    ),
    (
        "unknown paper format",
        task_spec(screenshot=None, pdf={"paperFormat": "B5"}),
        "pdf.paperFormat",
    ),
    (
        "unknown content format",
        with_raw(lambda s: setattr(s.content, "format", 9), screenshot=None, content={}),
        "content.format",
    ),
    ("extract without fields", task_spec(screenshot=None, extract={}), "extract.fields"),
    (
        "extract with too many fields",
        task_spec(screenshot=None, extract={"fields": {f"f{i}": "h1" for i in range(101)}}),
        "extract.fields",
    ),
    (
        "extract field without a name",
        task_spec(screenshot=None, extract={"fields": {"": "h1"}}),
        "extract.fields",
    ),
    (
        "extract field without a selector",
        task_spec(screenshot=None, extract={"fields": {"title": ""}}),
        "extract.fields.title",
    ),
    (
        "extract selector too long",
        task_spec(screenshot=None, extract={"fields": {"title": "a" * 1001}}),
        "extract.fields.title",
    ),
    ("script without source", task_spec(screenshot=None, script={}), "script.source"),
    (
        "script too long",
        task_spec(screenshot=None, script={"source": "x" * 100001}),
        "script.source",
    ),
    ("too many steps", task_spec(steps=steps(51)), "steps"),
    ("empty step", task_spec(steps=[{"click": "#a"}, {}]), "steps[1]"),
    ("step with two kinds", task_spec(steps=[{"click": "#a", "press": "Enter"}]), "steps[0]"),
    (
        "click selector too long",
        task_spec(steps=[*steps(2), {"click": "a" * 1001}]),
        "steps[2].click",
    ),
    ("waitFor selector too long", task_spec(steps=[{"waitFor": "a" * 1001}]), "steps[0].waitFor"),
    ("scroll selector too long", task_spec(steps=[{"scroll": "a" * 1001}]), "steps[0].scroll"),
    ("press key too long", task_spec(steps=[{"press": "K" * 101}]), "steps[0].press"),
    (
        "fill without selector",
        task_spec(steps=[{"fill": {"value": "x"}}]),
        "steps[0].fill.selector",
    ),
    (
        "fill selector too long",
        task_spec(steps=[{"fill": {"selector": "a" * 1001, "value": "x"}}]),
        "steps[0].fill.selector",
    ),
    (
        "fill value too long",
        task_spec(steps=[{"fill": {"selector": "#q", "value": "x" * 10001}}]),
        "steps[0].fill.value",
    ),
    ("viewport width zero", task_spec(viewport={"width": 0, "height": 800}), "viewport.width"),
    (
        "viewport width too big",
        task_spec(viewport={"width": 10001, "height": 800}),
        "viewport.width",
    ),
    ("viewport height missing", task_spec(viewport={"width": 1280}), "viewport.height"),
    (
        "viewport height too big",
        task_spec(viewport={"width": 1, "height": 10001}),
        "viewport.height",
    ),
    ("device name too long", task_spec(device="d" * 101), "device"),
    ("unknown waitUntil", with_raw(lambda s: setattr(s, "wait_until", 9)), "waitUntil"),
    ("unknown isolation", with_raw(lambda s: setattr(s, "isolation", 9)), "isolation"),
    ("timeout below a second", task_spec(timeoutMs=999), "timeoutMs"),
    ("timeout above five minutes", task_spec(timeoutMs=300001), "timeoutMs"),
    ("timeout negative", task_spec(timeoutMs=-1), "timeoutMs"),
    ("attempts above the cap", task_spec(maxAttempts=CAP + 1), "maxAttempts"),
    ("attempts negative", task_spec(maxAttempts=-1), "maxAttempts"),
    ("unknown priority", with_raw(lambda s: setattr(s, "priority", 9)), "priority"),
    ("region upper case", task_spec(region="EU"), "region"),
    ("region starting with a dash", task_spec(region="-eu"), "region"),
    ("region too long", task_spec(region="r" * 33), "region"),
    ("region with a dot", task_spec(region="eu.west"), "region"),
    ("too many labels", task_spec(labels={f"k{i}": "v" for i in range(33)}), "labels"),
    ("label key upper case", task_spec(labels={"Job": "x"}), "labels"),
    ("label key too long", task_spec(labels={"k" * 64: "x"}), "labels"),
    ("label key empty", task_spec(labels={"": "x"}), "labels"),
    ("label value too long", task_spec(labels={"job": "v" * 257}), "labels"),
    ("idempotency key too long", task_spec(idempotencyKey="k" * 129), "idempotencyKey"),
]


@pytest.mark.parametrize(
    ("invalid", "field"), [(s, f) for _, s, f in INVALID], ids=[name for name, _, _ in INVALID]
)
def test_invalid_spec_is_refused_naming_the_field(invalid: tasks_pb2.TaskSpec, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(invalid)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ")


def test_two_actions_error_lists_the_actions_set() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(pdf={}, content={}))
    assert "screenshot, pdf, content" in caught.value.message


def test_spec_without_action_says_none_was_set() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(screenshot=None))
    assert "got none" in caught.value.message


# What a spec of task_spec() is stored as: its screenshot and every default filled in.
STORED: dict[str, Any] = {
    "screenshot": {"format": "IMAGE_FORMAT_PNG"},
    "priority": "PRIORITY_NORMAL",
    "waitUntil": "WAIT_UNTIL_LOAD",
    "timeoutMs": DEFAULT_TIMEOUT_MS,
    "maxAttempts": 3,
    "viewport": {"width": 1280, "height": 800},
    "cacheTtlSeconds": 3600,
}

# (what is valid, the fields sent, the fields stored beyond the defaults and those sent)
VALID: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("http url", {"url": "http://example.com"}, {}),
    ("url with port and query", {"url": "https://example.com:8443/a?b=c#d"}, {}),
    ("url with a fully qualified host", {"url": "https://example.com./"}, {}),
    ("url with an IPv6 host", {"url": "http://[::1]:8080/"}, {}),
    ("url of 2048 characters", {"url": "https://example.com/" + "a" * 2028}, {}),
    ("jpeg quality 1", {"screenshot": {"format": "IMAGE_FORMAT_JPEG", "quality": 1}}, {}),
    ("jpeg quality 100", {"screenshot": {"format": "IMAGE_FORMAT_JPEG", "quality": 100}}, {}),
    (
        "selector of 1000 characters",
        {"screenshot": {"selector": "a" * 1000}},
        {"screenshot": {"selector": "a" * 1000, "format": "IMAGE_FORMAT_PNG"}},
    ),
    ("50 steps", {"steps": steps(50)}, {"cacheTtlSeconds": 0}),
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
        # Steps that act on the page cache nothing unless the task asks.
        {"cacheTtlSeconds": 0},
    ),
    (
        "100 extract fields",
        {"screenshot": None, "extract": {"fields": {f"f{i}": "h1" for i in range(100)}}},
        {"cacheTtlSeconds": 60},
    ),
    (
        "script of 100000 characters",
        {"screenshot": None, "script": {"source": "x" * 100000}},
        {"cacheTtlSeconds": 60},
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
    assert validate(task_spec(**sent)) == task_spec(**{**STORED, **sent, **stored})


def test_defaults_are_filled_in() -> None:
    checked = validate(task_spec())
    assert checked.priority == tasks_pb2.PRIORITY_NORMAL
    assert checked.wait_until == tasks_pb2.WAIT_UNTIL_LOAD
    assert checked.timeout_ms == DEFAULT_TIMEOUT_MS
    assert checked.max_attempts == 3
    assert (checked.viewport.width, checked.viewport.height) == (1280, 800)
    assert checked.screenshot.format == tasks_pb2.IMAGE_FORMAT_PNG
    assert checked.screenshot.quality == 0
    assert checked.cache_ttl_seconds == 3600


def test_given_values_are_kept() -> None:
    checked = validate(
        task_spec(
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
    checked = validate(task_spec(device="iPhone 13"))
    assert not checked.HasField("viewport")


def test_default_attempts_stay_within_a_lower_cap() -> None:
    assert validate(task_spec(), cap=2).max_attempts == 2


def test_jpeg_quality_defaults_to_80() -> None:
    checked = validate(task_spec(screenshot={"format": "IMAGE_FORMAT_JPEG"}))
    assert checked.screenshot.quality == 80


@pytest.mark.parametrize(
    ("given", "stored"), [("", "A4"), ("letter", "Letter"), ("a3", "A3"), ("TABLOID", "Tabloid")]
)
def test_paper_format_is_case_insensitive_and_defaults_to_a4(given: str, stored: str) -> None:
    checked = validate(task_spec(screenshot=None, pdf={"paperFormat": given}))
    assert checked.pdf.paper_format == stored


def test_content_format_defaults_to_html() -> None:
    checked = validate(task_spec(screenshot=None, content={}))
    assert checked.content.format == tasks_pb2.CONTENT_FORMAT_HTML


def test_validation_leaves_the_request_unchanged() -> None:
    original = task_spec()
    validate(original)
    assert original == task_spec()


def test_a_screencast_without_a_format_is_stored_as_webm_and_a_given_one_is_kept() -> None:
    assert validate(task_spec(screencast={})).screencast.format == tasks_pb2.VIDEO_FORMAT_WEBM
    checked = validate(task_spec(screencast={"format": "VIDEO_FORMAT_GIF"}))
    assert checked.screencast.format == tasks_pb2.VIDEO_FORMAT_GIF
    assert not validate(task_spec()).HasField("screencast")


def test_a_screencast_format_no_name_has_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(with_raw(lambda s: setattr(s.screencast, "format", 99)))
    assert caught.value.field == "screencast.format"
