"""The toolbox's steps and page setup, checked by the scheduler: each error names its JSON field."""

from typing import Any

import pytest
from google.protobuf import json_format

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from farm_scheduler.sessions.validation import (
    SessionBounds,
    validate_command,
    validate_session_spec,
)
from farm_scheduler.validation import runs_script, validate_spec


def spec(**fields: Any) -> tasks_pb2.TaskSpec:
    """A TaskSpec from its JSON form: a screenshot of example.com with these fields."""
    return json_format.ParseDict(
        {"url": "https://example.com/", "screenshot": {}, **fields}, tasks_pb2.TaskSpec()
    )


def validate(task_spec: tasks_pb2.TaskSpec) -> tasks_pb2.TaskSpec:
    return validate_spec(task_spec, max_attempts_cap=10, default_timeout_ms=30000)


def refusal(task_spec: tasks_pb2.TaskSpec) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec)
    return caught.value


def cookie(**fields: Any) -> dict[str, Any]:
    return {"name": "sid", "value": "abc", "domain": "example.com", **fields}


EVERY_STEP = [
    {"hover": "#menu"},
    {"select": {"selector": "#size", "value": "m"}},
    {"select": {"selector": "#size", "label": "Medium"}},
    {"check": "#agree"},
    {"uncheck": "#news"},
    {"goto": "https://example.com/next?page=2"},
    {"wait": {"text": "Thank you"}},
    {"wait": {"networkIdle": True}},
    {"wait": {"ms": 250}},
    {"evaluate": "() => window.scrollBy(0, 300)"},
    {"back": True},
    {"forward": True},
    # Accessibility snapshot references, which Playwright resolves itself.
    {"click": "aria-ref=e5"},
    {"fill": {"selector": "aria-ref=e12", "value": "x"}},
    {"hover": "aria-ref=e7"},
]


def test_every_new_step_and_accessibility_references_are_accepted_as_sent() -> None:
    checked = validate(spec(steps=EVERY_STEP))
    assert [json_format.MessageToDict(step) for step in checked.steps] == EVERY_STEP


BAD_STEPS: list[tuple[str, dict[str, Any], str]] = [
    ("two kinds", {"hover": "#a", "check": "#b"}, "steps[0]: exactly one of"),
    ("select without option", {"select": {"selector": "#s"}}, "steps[0].select: needs"),
    ("select without selector", {"select": {"value": "m"}}, "steps[0].select.selector: is"),
    ("goto ftp", {"goto": "ftp://example.com/"}, "steps[0].goto: must be http or https"),
    ("goto file", {"goto": "file:///etc/passwd"}, "steps[0].goto: must be http or https"),
    ("goto without host", {"goto": "https:///x"}, "steps[0].goto: has no host"),
    ("goto with spaces", {"goto": "https://a b/"}, "steps[0].goto: must not contain spaces"),
    ("wait for nothing", {"wait": {}}, "steps[0].wait: exactly one of text, networkIdle, ms"),
    (
        "wait for two things",
        {"wait": {"text": "a", "ms": 5}},
        "steps[0].wait: exactly one of text, networkIdle, ms must be set, got text, ms",
    ),
    ("negative wait", {"wait": {"ms": -5}}, "steps[0].wait.ms: must be between 1 and 300000"),
    ("back and forward", {"back": True, "forward": True}, "steps[0]: exactly one of"),
    ("back false", {"back": False}, "steps[0]: exactly one of"),
    (
        "empty click",
        {"click": ""},
        "steps[0]: exactly one of click, fill, waitFor, press, scroll, hover, select, check, "
        "uncheck, goto, wait, evaluate, back, forward must be set, got none (an empty text, 0 "
        "or false counts as not set)",
    ),
    (
        "wait for zero ms",
        {"wait": {"ms": 0}},
        "steps[0].wait: exactly one of text, networkIdle, ms must be set, got none (an empty "
        "text, 0 or false counts as not set)",
    ),
]


@pytest.mark.parametrize(
    ("step", "message"), [(s, m) for _, s, m in BAD_STEPS], ids=[n for n, _, _ in BAD_STEPS]
)
def test_a_bad_step_is_refused_naming_its_field(step: dict[str, Any], message: str) -> None:
    assert refusal(spec(steps=[step])).message.startswith(message)


def test_a_wait_no_attempt_has_the_time_for_is_refused() -> None:
    # An agent keeps a quarter of a 5 s attempt back (2 s of a longer one): a wait of
    # 4999 ms would fail every attempt with TIMEOUT, so it is refused at once.
    assert validate(spec(timeoutMs=5000, steps=[{"wait": {"ms": 3749}}])).steps[0].wait.ms == 3749
    for too_long in (3750, 4999, 5000):
        refused = refusal(spec(timeoutMs=5000, steps=[{"click": "#a"}, {"wait": {"ms": too_long}}]))
        assert refused.message == (
            "steps[1].wait.ms: must be less than 3750 (timeoutMs 5000 less the 1250 ms"
            f" an agent keeps back), got {too_long}"
        )
    assert refusal(spec(timeoutMs=10000, steps=[{"wait": {"ms": 9900}}])).message.startswith(
        "steps[0].wait.ms: must be less than 8000 (timeoutMs 10000 less the 2000 ms"
    )
    command = sessions_pb2.SessionCommand(steps=[tasks_pb2.Step(wait=tasks_pb2.WaitStep(ms=28000))])
    with pytest.raises(InvalidArgument, match=r"steps\[0\]\.wait\.ms: must be less than 28000"):
        validate_command(command, default_timeout_ms=30000)


def test_a_step_error_names_the_steps_index() -> None:
    steps = [{"click": "#a"}, {"hover": "#b"}, {"goto": "javascript:alert(1)"}]
    assert refusal(spec(steps=steps)).field == "steps[2].goto"


def test_evaluate_steps_and_script_actions_need_the_script_scope() -> None:
    assert runs_script(spec(steps=[{"evaluate": "() => 1"}]))
    assert runs_script(spec(screenshot=None, script={"source": "() => 1"}))
    assert not runs_script(spec(steps=[{"click": "#a"}]))
    command = sessions_pb2.SessionCommand(steps=[tasks_pb2.Step(evaluate="() => 1")])
    assert runs_script(command)
    assert not runs_script(sessions_pb2.SessionCommand(steps=[tasks_pb2.Step(hover="#a")]))


FULL_SETUP: dict[str, Any] = {
    "userAgent": "FarmBot/1.0 (+https://example.com/bot)",
    "extraHeaders": {"X-Farm-Test": "yes", "Accept-Language": "fr"},
    "locale": "de-DE",
    "timezone": "Europe/Berlin",
    "javascriptDisabled": True,
    "cookies": [
        cookie(path="/shop", expires="1900000000", httpOnly=True, secure=True),
        {"name": "theme", "value": "dark", "url": "https://example.com/"},
        cookie(name="__Secure-id", secure=True, sameSite="SAME_SITE_NONE"),
        {"name": "__Host-token", "value": "t", "url": "https://example.com/", "secure": True},
    ],
    "blockResources": ["RESOURCE_TYPE_IMAGE", "RESOURCE_TYPE_FONT"],
    "blockTrackers": True,
    "deviceScaleFactor": 2.5,
    "isMobile": True,
    "hasTouch": True,
}


def test_a_full_setup_is_kept_and_a_domain_cookie_gets_path_slash() -> None:
    checked = validate(spec(setup=FULL_SETUP))
    sent = spec(setup=FULL_SETUP).setup
    sent.cookies[2].path = "/"
    assert checked.setup == sent


@pytest.mark.parametrize(
    "locale", ["de", "de-DE", "zh-Hant-TW", "es-419", "fil-PH", "sr-Latn"], ids=str
)
def test_language_tags_are_accepted(locale: str) -> None:
    assert validate(spec(setup={"locale": locale})).setup.locale == locale


BAD_SETUPS: list[tuple[str, dict[str, Any], str]] = [
    ("user agent newline", {"userAgent": "a\nb"}, "setup.userAgent: must not contain control"),
    ("header name space", {"extraHeaders": {"X A": "1"}}, "setup.extraHeaders.X A: 'X A' is not"),
    ("header Host", {"extraHeaders": {"Host": "a"}}, "setup.extraHeaders.Host: the header"),
    ("proxy header", {"extraHeaders": {"Proxy-Foo": "a"}}, "setup.extraHeaders.Proxy-Foo: the"),
    (
        "header twice",
        {"extraHeaders": {"X-A": "1", "x-a": "2"}},
        "setup.extraHeaders.x-a: is given twice",
    ),
    ("header CRLF", {"extraHeaders": {"X-A": "1\r\nX-B: 2"}}, "setup.extraHeaders.X-A: must not"),
    ("locale word", {"locale": "german"}, "setup.locale: must be a language tag"),
    ("locale underscore", {"locale": "de_DE"}, "setup.locale: must be a language tag"),
    ("timezone unknown", {"timezone": "Mars/Olympus"}, "setup.timezone: must be an IANA"),
    ("timezone case", {"timezone": "europe/berlin"}, "setup.timezone: must be an IANA"),
    ("timezone path", {"timezone": "../etc/passwd"}, "setup.timezone: must be an IANA"),
    ("cookie no name", {"cookies": [cookie(name="")]}, "setup.cookies[0].name: is required"),
    ("cookie name =", {"cookies": [cookie(name="a=b")]}, "setup.cookies[0].name: 'a=b' is not"),
    ("cookie value ;", {"cookies": [cookie(value="a;b")]}, "setup.cookies[0].value: must not"),
    (
        "cookie nowhere",
        {"cookies": [{"name": "a", "value": "b"}]},
        "setup.cookies[0].domain: is required (or give url)",
    ),
    (
        "cookie url and domain",
        {"cookies": [cookie(url="https://example.com/")]},
        "setup.cookies[0].url: is given instead of domain and path",
    ),
    (
        "cookie ftp url",
        {"cookies": [{"name": "a", "url": "ftp://example.com/"}]},
        "setup.cookies[0].url: must be an http or https URL",
    ),
    ("cookie bad domain", {"cookies": [cookie(domain="a b")]}, "setup.cookies[0].domain: 'a b'"),
    ("cookie path", {"cookies": [cookie(path="shop")]}, "setup.cookies[0].path: must start"),
    ("cookie expires", {"cookies": [cookie(expires="-1")]}, "setup.cookies[0].expires: must be"),
    (
        "SameSite=None without secure",
        {"cookies": [cookie(sameSite="SAME_SITE_NONE")]},
        "setup.cookies[0].sameSite: SAME_SITE_NONE needs secure",
    ),
    (
        "__Secure- without secure",
        {"cookies": [cookie(name="__Secure-a")]},
        "setup.cookies[0].secure: a cookie named '__Secure-a' needs secure",
    ),
    (
        "__Host- with a domain",
        {"cookies": [cookie(name="__Host-a", secure=True)]},
        "setup.cookies[0].name: a cookie named '__Host-a' must be given by url",
    ),
    (
        "second cookie bad",
        {"cookies": [cookie(), cookie(), cookie(name="")]},
        "setup.cookies[2].name: is required",
    ),
    (
        "unspecified resource",
        {"blockResources": ["RESOURCE_TYPE_IMAGE", "RESOURCE_TYPE_UNSPECIFIED"]},
        "setup.blockResources[1]: has no value 0",
    ),
    ("scale too small", {"deviceScaleFactor": 0.05}, "setup.deviceScaleFactor: must be 0 or"),
    ("scale too large", {"deviceScaleFactor": 10.5}, "setup.deviceScaleFactor: must be 0 or"),
    ("scale NaN", {"deviceScaleFactor": "NaN"}, "setup.deviceScaleFactor: must be 0 or"),
]


@pytest.mark.parametrize(
    ("setup", "message"), [(s, m) for _, s, m in BAD_SETUPS], ids=[n for n, _, _ in BAD_SETUPS]
)
def test_a_bad_setup_is_refused_naming_its_field(setup: dict[str, Any], message: str) -> None:
    assert refusal(spec(setup=setup)).message.startswith(message)


def test_an_unknown_resource_type_number_is_refused() -> None:
    task_spec = spec()
    task_spec.setup.block_resources.append(99)  # type: ignore[arg-type]
    assert refusal(task_spec).field == "setup.blockResources[0]"


def test_a_session_spec_and_a_command_check_their_setup_the_same_way() -> None:
    session_spec = json_format.ParseDict(
        {"setup": {"timezone": "Nowhere/City"}}, sessions_pb2.SessionSpec()
    )
    with pytest.raises(InvalidArgument) as caught:
        validate_session_spec(session_spec, SessionBounds())
    assert caught.value.field == "setup.timezone"
    command = json_format.ParseDict(
        {"setup": {"cookies": [{"name": "a", "value": "b"}]}}, sessions_pb2.SessionCommand()
    )
    with pytest.raises(InvalidArgument) as caught:
        validate_command(command, default_timeout_ms=30000)
    assert caught.value.field == "setup.cookies[0].domain"


@pytest.mark.parametrize(
    ("command", "field"),
    [
        ({"device": "d" * 101}, "device"),
        ({"viewport": {"width": 0, "height": 600}}, "viewport.width"),
        ({"viewport": {"width": 800, "height": 10001}}, "viewport.height"),
        ({"setup": {"extraHeaders": {"Connection": "close"}}}, "setup.extraHeaders.Connection"),
    ],
)
def test_a_commands_device_viewport_and_setup_are_checked(
    command: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_command(json_format.ParseDict(command, sessions_pb2.SessionCommand()), 30000)
    assert caught.value.field == field


def test_a_command_that_only_changes_the_setup_is_valid() -> None:
    command = json_format.ParseDict(
        {
            "device": "iPhone 13",
            "viewport": {"width": 390, "height": 700},
            "resetSetup": True,
            "setup": {"locale": "fr-FR", "cookies": [cookie()]},
        },
        sessions_pb2.SessionCommand(),
    )
    checked = validate_command(command, 30000)
    assert checked.device == "iPhone 13" and checked.reset_setup
    assert checked.setup.cookies[0].path == "/"


def test_a_command_may_open_a_page_at_its_url() -> None:
    command = json_format.ParseDict(
        {"tabs": {"action": "TABS_ACTION_NEW"}, "url": "https://example.com/"},
        sessions_pb2.SessionCommand(),
    )
    assert validate_command(command, 30000).tabs.action == sessions_pb2.TABS_ACTION_NEW


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ({"tabs": {"index": 1}}, "tabs.action: is required"),
        ({"tabs": {"action": 99}}, "tabs.action: is required"),
        ({"tabs": {"action": "TABS_ACTION_SELECT", "index": -1}}, "tabs.index: must be 0 or more"),
        ({"tabs": {"action": "TABS_ACTION_LIST"}, "content": {}}, "tabs: may not be set with"),
    ],
)
def test_a_bad_tabs_is_refused_naming_its_field(command: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_command(json_format.ParseDict(command, sessions_pb2.SessionCommand()), 30000)
    assert caught.value.message.startswith(message)
