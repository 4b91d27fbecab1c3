"""Selectors and select options the agent could not use: refused at create, naming the field."""

from typing import Any

import pytest

from farm.sessions.v1 import sessions_pb2
from farm_core.errors import InvalidArgument
from farm_scheduler.sessions.validation import validate_command
from tests.helpers import task_spec
from tests.unit.scheduler.conftest import DEFAULT_TIMEOUT_MS, validate

BLANK = "  \t\u00a0"

# (what is blank, the spec's fields, the field named)
BLANK_SELECTORS: list[tuple[str, dict[str, Any], str]] = [
    ("click", {"steps": [{"click": "#a"}, {"click": BLANK}]}, "steps[1].click"),
    ("waitFor", {"steps": [{"waitFor": " "}]}, "steps[0].waitFor"),
    ("scroll", {"steps": [{"scroll": " "}]}, "steps[0].scroll"),
    ("hover", {"steps": [{"hover": " "}]}, "steps[0].hover"),
    ("check", {"steps": [{"check": " "}]}, "steps[0].check"),
    ("uncheck", {"steps": [{"uncheck": " "}]}, "steps[0].uncheck"),
    ("fill", {"steps": [{"fill": {"selector": " ", "value": "x"}}]}, "steps[0].fill.selector"),
    (
        "select",
        {"steps": [{"select": {"selector": " ", "value": "x"}}]},
        "steps[0].select.selector",
    ),
    ("screenshot", {"screenshot": {"selector": " "}}, "screenshot.selector"),
    (
        "compare mask",
        {"screenshot": {"compare": {"baseline": "home", "mask": ["#ad", " "]}}},
        "screenshot.compare.mask[1]",
    ),
    ("extract", {"screenshot": None, "extract": {"fields": {"t": BLANK}}}, "extract.fields.t"),
]


@pytest.mark.parametrize(
    ("fields", "field"),
    [(fields, field) for _, fields, field in BLANK_SELECTORS],
    ids=[name for name, _, _ in BLANK_SELECTORS],
)
def test_a_blank_selector_is_refused_naming_its_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(**fields))
    assert caught.value.message == f"{field}: must not be blank"


def test_a_sessions_command_refuses_a_blank_selector_too() -> None:
    command = sessions_pb2.SessionCommand()
    command.steps.add().click = " "
    with pytest.raises(InvalidArgument) as caught:
        validate_command(command, DEFAULT_TIMEOUT_MS)
    assert caught.value.message == "steps[0].click: must not be blank"


@pytest.mark.parametrize("rule", ["[]", " []", " @href", " @href[]", "@href", "@href[]"])
def test_an_extract_rule_without_a_selector_is_refused(rule: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(screenshot=None, extract={"fields": {"t": rule}}))
    assert caught.value.message == f"extract.fields.t: has no selector, got {rule!r}"


# (what is blank, the spec's fields, the field named): a script of only spaces runs nothing.
BLANK_SCRIPTS: list[tuple[str, dict[str, Any], str]] = [
    ("script", {"screenshot": None, "script": {"source": BLANK}}, "script.source"),
    ("evaluate", {"steps": [{"evaluate": " "}]}, "steps[0].evaluate"),
]


@pytest.mark.parametrize(
    ("fields", "field"),
    [(fields, field) for _, fields, field in BLANK_SCRIPTS],
    ids=[name for name, _, _ in BLANK_SCRIPTS],
)
def test_a_blank_script_is_refused_naming_its_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(**fields))
    assert caught.value.message == f"{field}: must not be blank"


def test_selectors_with_spaces_around_them_are_kept_as_sent() -> None:
    checked = validate(task_spec(steps=[{"click": " #a "}], screenshot={"selector": " main"}))
    assert checked.steps[0].click == " #a "
    assert checked.screenshot.selector == " main"


def test_a_select_step_with_both_a_value_and_a_label_is_refused_naming_both() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(steps=[{"select": {"selector": "#s", "value": "xl", "label": "XL"}}]))
    assert caught.value.field == "steps[0].select"
    assert "value and label may not both be set" in caught.value.message


@pytest.mark.parametrize("option", [{"value": "xl"}, {"label": "XL"}])
def test_a_select_step_with_a_value_or_a_label_is_valid(option: dict[str, str]) -> None:
    checked = validate(task_spec(steps=[{"select": {"selector": "#s", **option}}]))
    assert checked.steps[0].select.value == option.get("value", "")
    assert checked.steps[0].select.label == option.get("label", "")
