"""`device` is checked at create against Playwright's device names, kept beside the scheduler."""

import pytest
from playwright.async_api import async_playwright

from farm.sessions.v1 import sessions_pb2
from farm_core.errors import InvalidArgument
from farm_scheduler.devices import MAX_DEVICE_CHARS, device_names
from farm_scheduler.sessions.validation import (
    SessionBounds,
    validate_command,
    validate_session_spec,
)
from tests.helpers import task_spec
from tests.unit.scheduler.conftest import DEFAULT_TIMEOUT_MS, validate


async def test_the_names_are_the_installed_playwrights() -> None:
    async with async_playwright() as playwright:
        installed = set(playwright.devices)
    # On a difference, rewrite device_names.txt from sorted(playwright.devices), one a line.
    assert sorted(device_names() - installed) == []
    assert sorted(installed - device_names()) == []


@pytest.mark.parametrize("device", ["iPhone 13", "Pixel 7 landscape", "Desktop Chrome"])
def test_a_device_playwright_knows_is_kept(device: str) -> None:
    assert validate(task_spec(device=device)).device == device


@pytest.mark.parametrize(
    ("device", "message"),
    [
        (
            "iphone 13",
            "device: 'iphone 13' is not a device Playwright knows (did you mean 'iPhone 13'?)",
        ),
        ("Pixel7", "device: 'Pixel7' is not a device Playwright knows (did you mean 'Pixel 7'?)"),
        (
            "Nokia 3310",
            "device: 'Nokia 3310' is not a device Playwright knows, e.g. 'iPhone 13' or 'Pixel 7'",
        ),
    ],
)
def test_an_unknown_device_is_refused_at_create_with_the_nearest_name(
    device: str, message: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(device=device))
    assert caught.value.message == message


def test_a_name_over_the_limit_is_refused_by_its_length() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(device="d" * (MAX_DEVICE_CHARS + 1)))
    assert caught.value.message.startswith(f"device: must be at most {MAX_DEVICE_CHARS} ")


def test_sessions_and_their_commands_are_checked_alike() -> None:
    with pytest.raises(InvalidArgument) as spec_refused:
        validate_session_spec(sessions_pb2.SessionSpec(device="Nokia 3310"), SessionBounds())
    with pytest.raises(InvalidArgument) as command_refused:
        validate_command(sessions_pb2.SessionCommand(device="Nokia 3310"), DEFAULT_TIMEOUT_MS)
    assert spec_refused.value.field == command_refused.value.field == "device"
