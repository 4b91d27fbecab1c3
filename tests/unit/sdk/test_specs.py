"""How the SDK turns what callers write into TaskSpecs, and statuses into exceptions."""

import asyncio
import gc
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import grpc
import pytest

import browserfarm
from browserfarm.config import client_options
from browserfarm.errors import from_status
from browserfarm.specs import action_spec, session_command, task_spec
from farm.tasks.v1 import tasks_pb2


def test_shortcut_options_go_to_the_action_or_the_task() -> None:
    spec = action_spec(
        "https://example.com",
        "screenshot",
        {"full_page": True, "format": "jpeg", "viewport": {"width": 800, "height": 600}},
    )
    assert spec.screenshot.full_page
    assert spec.screenshot.format == tasks_pb2.IMAGE_FORMAT_JPEG
    assert (spec.viewport.width, spec.viewport.height) == (800, 600)


def test_pdf_and_screenshot_shortcuts_take_the_nested_options() -> None:
    printed = action_spec(
        "https://example.com",
        "pdf",
        {
            "margin": {"top": "1cm"},
            "page_ranges": "1-3",
            "prefer_css_page_size": True,
            "scale": 0.5,
        },
    )
    assert (printed.pdf.margin.top, printed.pdf.page_ranges) == ("1cm", "1-3")
    assert (printed.pdf.prefer_css_page_size, printed.pdf.scale) == (True, 0.5)
    shot = action_spec(
        "https://example.com",
        "screenshot",
        {"omit_background": True, "clip": {"x": 5, "y": 0, "width": 40, "height": 30}},
    )
    assert shot.screenshot.omit_background
    assert (shot.screenshot.clip.x, shot.screenshot.clip.width) == (5, 40)


def test_specs_take_camel_or_snake_names_and_short_or_full_enum_values() -> None:
    camel = task_spec({"url": "https://a.test", "waitUntil": "WAIT_UNTIL_NETWORKIDLE"})
    snake = task_spec({"url": "https://a.test", "wait_until": "networkidle"})
    assert camel == snake
    assert task_spec({"url": "https://a.test", "priority": "high"}).priority == (
        tasks_pb2.PRIORITY_HIGH
    )
    steps = task_spec({"url": "https://a.test", "steps": [{"scroll": "bottom"}]}).steps
    assert steps[0].scroll == "bottom"


def test_a_session_command_may_navigate_and_act() -> None:
    command = session_command("content", {"format": "text"}, url="https://a.test")
    assert command.url == "https://a.test"
    assert command.content.format == tasks_pb2.CONTENT_FORMAT_TEXT
    assert not session_command(None, {"steps": [{"click": "#go"}]}).HasField("content")


def test_a_spec_that_does_not_fit_is_refused_before_any_call() -> None:
    with pytest.raises(browserfarm.InvalidArgument, match="noSuchField"):
        task_spec({"url": "https://a.test", "noSuchField": 1})
    with pytest.raises(browserfarm.InvalidArgument, match="format"):
        action_spec("https://a.test", "screenshot", {"format": "bmp"})


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (
            lambda: task_spec({"url": "https://a.test", "screenshotx": {}}),
            "screenshotx: TaskSpec has no such field; did you mean 'screenshot'?",
        ),
        (
            lambda: task_spec({"url": "https://a.test", "screenshot": {"fullpage": True}}),
            "screenshot.fullpage: ScreenshotOptions has no such field; did you mean 'fullPage'?",
        ),
        (
            lambda: task_spec(
                {"url": "https://a.test", "steps": [{"click": "#a"}, {"clack": "#b"}]}
            ),
            "steps[1].clack: Step has no such field; did you mean 'click'?",
        ),
        (
            lambda: task_spec({"url": "https://a.test", "steps": [{"wait": 4000}]}),
            "steps[0].wait: must be an object (text, networkIdle, ms), got 4000",
        ),
        (
            lambda: action_spec("https://a.test", "screenshot", {"fullpage": True}),
            "fullpage: neither a screenshot option nor a TaskSpec field; did you mean 'full_page'?",
        ),
        (
            lambda: task_spec({"url": 5}),
            "url: must be a string, got 5",
        ),
        (
            lambda: task_spec({"url": "https://a.test", "steps": [{"click": "#a"}, {"hover": 5}]}),
            "steps[1].hover: must be a string, got 5",
        ),
        (
            lambda: task_spec({"url": "https://a.test", "screenshot": {"fullPage": "yes"}}),
            "screenshot.fullPage: must be true or false, got 'yes'",
        ),
        (
            lambda: task_spec({"url": "https://a.test", "screenshot": {"quality": True}}),
            "screenshot.quality: must be a whole number, got True",
        ),
        (
            lambda: task_spec({"url": "https://a.test", "labels": {"team": 7}}),
            "labels.team: must be a string, got 7",
        ),
        (
            lambda: task_spec({"url": "https://a.test", "timeoutMs": 2**40}),
            f"timeoutMs: Value out of range: {2**40}",
        ),
    ],
    ids=[
        "unknown",
        "nested",
        "in a list",
        "not an object",
        "shortcut keyword",
        "number for a string",
        "number for a string in a list",
        "word for a bool",
        "bool for a number",
        "number for a map's string",
        "number out of range",
    ],
)
def test_a_refused_spec_names_the_field_and_the_closest_one(
    write: Callable[[], object], message: str
) -> None:
    with pytest.raises(browserfarm.InvalidArgument) as refused:
        write()
    assert refused.value.message == message


def test_a_given_taskspec_is_copied_not_changed() -> None:
    given = tasks_pb2.TaskSpec(url="https://a.test")
    copy = task_spec(given)
    copy.idempotency_key = "x"
    assert given.idempotency_key == ""


@pytest.mark.parametrize(
    ("code", "retry_after", "kind"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, None, browserfarm.InvalidArgument),
        (grpc.StatusCode.NOT_FOUND, None, browserfarm.NotFound),
        (grpc.StatusCode.UNAUTHENTICATED, None, browserfarm.Unauthenticated),
        (grpc.StatusCode.PERMISSION_DENIED, None, browserfarm.PermissionDenied),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "2", browserfarm.RateLimited),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, None, browserfarm.QuotaExceeded),
        (grpc.StatusCode.UNAVAILABLE, None, browserfarm.Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, None, browserfarm.Timeout),
        (grpc.StatusCode.INTERNAL, None, browserfarm.FarmError),
    ],
)
def test_each_status_is_its_own_exception(
    code: grpc.StatusCode, retry_after: str | None, kind: type[browserfarm.FarmError]
) -> None:
    metadata = [("retry-after", retry_after)] if retry_after else []
    error = from_status(code, "why", metadata)
    assert type(error) is kind
    assert (error.code, error.message) == (code, "why")
    if retry_after:
        assert isinstance(error, browserfarm.RateLimited)
        assert error.retry_after == 2.0


def test_the_url_and_key_come_from_the_environment_unless_given(tmp_path: Path) -> None:
    environ = {"FARM_URL": "https://farm.test:8443", "FARM_API_KEY": "bf_env"}
    options = client_options(None, None, environ)
    assert (options.target, options.secure, options.api_key) == ("farm.test:8443", True, "bf_env")
    given = client_options("http://127.0.0.1:9", "bf_given", environ, timeout=5)
    assert (given.target, given.secure, given.api_key, given.timeout) == (
        "127.0.0.1:9",
        False,
        "bf_given",
        5,
    )
    # Outside a checkout, with no FARM_HOME: no local farm's key either.
    with pytest.raises(ValueError, match="FARM_API_KEY"):
        client_options(None, None, {}, tmp_path)


def test_a_spec_that_is_not_a_dict_is_refused_naming_spec() -> None:
    with pytest.raises(browserfarm.InvalidArgument) as refused:
        task_spec("https://a.test")  # type: ignore[arg-type]
    assert refused.value.message.startswith("spec: must be a dict (the TaskSpec's JSON")
    assert "got str 'https://a.test'" in refused.value.message


def test_extract_fields_that_are_not_a_dict_are_refused_before_any_call() -> None:
    async def extract() -> object:
        # Nothing listens on port 1: the refusal must come before any call.
        async with browserfarm.AsyncClient(url="127.0.0.1:1", api_key="bf_x") as farm:
            return await farm.extract("https://a.test", ["h1"])  # type: ignore[arg-type]

    with pytest.raises(browserfarm.InvalidArgument) as refused:
        asyncio.run(extract())
    assert refused.value.message.startswith("fields: must be a dict of name -> selector")


def test_a_closed_client_says_so_and_leaves_no_coroutine_unawaited() -> None:
    farm = browserfarm.Client(url="127.0.0.1:1", api_key="bf_x")
    farm.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match="the client is closed"):
            farm.get("tsk_1")
        gc.collect()


def test_a_url_without_a_port_takes_its_schemes_and_another_scheme_is_refused() -> None:
    plain = client_options("http://farm.test", "bf_given", {})
    assert (plain.target, plain.secure) == ("farm.test:80", False)
    tls = client_options("https://farm.test/", "bf_given", {})
    assert (tls.target, tls.secure) == ("farm.test:443", True)
    with pytest.raises(ValueError) as refused:
        client_options("ftp://farm.test:21", "bf_given", {})
    assert str(refused.value) == (
        "the farm's url must be host:port or http(s)://host:port, got 'ftp://farm.test:21'"
    )


def test_a_timestamp_field_takes_an_aware_datetime_and_refuses_a_naive_one() -> None:
    due = datetime(2030, 1, 2, 3, 4, 5, 600000, tzinfo=timezone(timedelta(hours=2)))
    spec = task_spec({"url": "https://example.com", "content": {}, "deadline": due})
    assert spec.deadline.ToDatetime(tzinfo=UTC) == due
    shortcut = action_spec("https://example.com", "screenshot", {"deadline": due})
    assert shortcut.deadline == spec.deadline
    with pytest.raises(browserfarm.InvalidArgument, match=r"^deadline: a datetime with its time"):
        task_spec({"url": "https://example.com", "deadline": datetime(2030, 1, 2)})


def test_an_enum_value_it_does_not_have_is_refused_naming_the_field_and_its_values() -> None:
    refused = r"^screenshot\.format: one of png, jpeg, not 'jpg'; did you mean 'jpeg'\?$"
    with pytest.raises(browserfarm.InvalidArgument, match=refused):
        action_spec("https://example.com", "screenshot", {"format": "jpg"})
    with pytest.raises(
        browserfarm.InvalidArgument, match=r"^priority: one of high, normal, low, not .urgent.$"
    ):
        task_spec({"url": "https://example.com", "content": {}, "priority": "urgent"})
