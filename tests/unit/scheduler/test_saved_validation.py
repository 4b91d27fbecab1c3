"""A task's profile and a screenshot's comparison as the scheduler checks them."""

from typing import Any

import pytest
from google.protobuf import json_format

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from farm_scheduler.action_checks import MAX_COMPARE_MASKS
from farm_scheduler.field_checks import MAX_SELECTOR_CHARS
from farm_scheduler.sessions.validation import validate_command
from farm_scheduler.validation import validate_spec


def validate(**fields: Any) -> tasks_pb2.TaskSpec:
    body: dict[str, Any] = {"url": "https://example.com/", **fields}
    if not any(action in body for action in ("screenshot", "content")):
        body["screenshot"] = {}
    return validate_spec(
        json_format.ParseDict(body, tasks_pb2.TaskSpec()),
        max_attempts_cap=10,
        default_timeout_ms=30000,
    )


def refused_field(**fields: Any) -> str:
    with pytest.raises(InvalidArgument) as caught:
        validate(**fields)
    return caught.value.field


def compare(**options: Any) -> dict[str, Any]:
    return {"compare": {"baseline": "home", **options}}


def test_a_comparison_gets_the_default_threshold_and_keeps_its_masks() -> None:
    checked = validate(screenshot=compare(mask=["#clock", ".ad"]))

    assert checked.screenshot.compare.threshold == 0.001
    assert list(checked.screenshot.compare.mask) == ["#clock", ".ad"]
    assert validate(screenshot=compare(threshold=0.2)).screenshot.compare.threshold == 0.2


@pytest.mark.parametrize(
    ("screenshot", "field"),
    [
        ({"compare": {}}, "screenshot.compare.baseline"),
        (compare(baseline="../home"), "screenshot.compare.baseline"),
        ({**compare(), "format": "IMAGE_FORMAT_JPEG"}, "screenshot.compare"),
        (compare(threshold=1.5), "screenshot.compare.threshold"),
        (compare(threshold=-0.1), "screenshot.compare.threshold"),
        (compare(mask=["#a", ""]), "screenshot.compare.mask[1]"),
        (compare(mask=["a" * (MAX_SELECTOR_CHARS + 1)]), "screenshot.compare.mask[0]"),
        (compare(mask=["#m"] * (MAX_COMPARE_MASKS + 1)), "screenshot.compare.mask"),
    ],
)
def test_a_bad_comparison_is_refused_naming_the_field(screenshot: Any, field: str) -> None:
    assert refused_field(screenshot=screenshot) == field


def test_masks_up_to_the_limit_of_selectors_up_to_theirs_are_kept() -> None:
    masks = ["a" * MAX_SELECTOR_CHARS] * MAX_COMPARE_MASKS

    checked = validate(screenshot=compare(mask=masks))

    assert len(checked.screenshot.compare.mask) == MAX_COMPARE_MASKS


def test_a_task_may_start_from_a_profile_and_save_to_it() -> None:
    checked = validate(profile="checkout-user", saveProfile=True)

    assert (checked.profile, checked.save_profile) == ("checkout-user", True)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"profile": "../etc"}, "profile"),
        ({"profile": "p" * 65}, "profile"),
        ({"saveProfile": True}, "saveProfile"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_field(fields: dict[str, Any], field: str) -> None:
    assert refused_field(**fields) == field


def test_a_session_command_s_comparison_is_checked_as_a_task_s() -> None:
    command = json_format.ParseDict(
        {"screenshot": {"format": "IMAGE_FORMAT_JPEG", "compare": {"baseline": "home"}}},
        sessions_pb2.SessionCommand(),
    )

    with pytest.raises(InvalidArgument) as caught:
        validate_command(command, 30000)

    assert caught.value.field == "screenshot.compare"
