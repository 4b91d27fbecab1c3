"""A session's look: how commands change it, and what it emulates (pure, no browser)."""

from typing import Any

import pytest
from google.protobuf import json_format

from farm.sessions.v1 import sessions_pb2
from farm_agent.errors import TaskFailure
from farm_agent.sessions.setup import Emulation, Look
from farm_core.task_errors import ErrorCode

DEVICES: dict[str, dict[str, Any]] = {
    "Phone": {
        "viewport": {"width": 390, "height": 664},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
        "user_agent": "PhoneUA",
    }
}


def look(**spec: Any) -> Look:
    return Look.of_spec(json_format.ParseDict(spec, sessions_pb2.SessionSpec()))


def changed(start: Look, **command: Any) -> Look:
    return start.changed_by(json_format.ParseDict(command, sessions_pb2.SessionCommand()))


def test_a_plain_session_emulates_the_default_screen_and_the_browsers_identity() -> None:
    assert Emulation.of(look(), DEVICES) == Emulation(
        width=1280,
        height=800,
        scale=0.0,
        mobile=False,
        touch=False,
        user_agent="",
        locale="",
        timezone="",
        javascript_disabled=False,
    )


def test_setup_fields_win_over_the_devices_and_the_viewport_over_its_size() -> None:
    emulation = Emulation.of(
        look(
            device="Phone",
            viewport={"width": 500, "height": 900},
            setup={"userAgent": "Mine", "deviceScaleFactor": 2, "locale": "de-DE"},
        ),
        DEVICES,
    )
    assert (emulation.width, emulation.height, emulation.scale) == (500, 900, 2.0)
    assert (emulation.user_agent, emulation.mobile, emulation.touch) == ("Mine", True, True)
    assert emulation.locale == "de-DE"


def test_a_commands_setup_replaces_only_the_fields_it_gives() -> None:
    start = look(
        setup={
            "locale": "de-DE",
            "timezone": "Europe/Berlin",
            "extraHeaders": {"X-A": "1", "X-B": "2"},
            "blockResources": ["RESOURCE_TYPE_IMAGE"],
        }
    )
    after = changed(
        start,
        setup={
            "timezone": "Asia/Tokyo",
            "extraHeaders": {"X-C": "3"},
            "blockResources": ["RESOURCE_TYPE_FONT"],
            "javascriptDisabled": True,
            "cookies": [{"name": "a", "value": "b", "url": "https://a.com/"}],
        },
    )
    assert (after.setup.locale, after.setup.timezone) == ("de-DE", "Asia/Tokyo")
    assert dict(after.setup.extra_headers) == {"X-C": "3"}
    assert list(after.setup.block_resources) == [2]
    assert after.setup.javascript_disabled
    # Cookies go to the browser; they are not part of the look.
    assert not after.setup.cookies
    # The look it started from is unchanged.
    assert start.setup.timezone == "Europe/Berlin" and not start.setup.javascript_disabled


def test_a_device_replaces_the_viewport_user_agent_scale_mobile_and_touch_given_before() -> None:
    start = look(
        viewport={"width": 640, "height": 480},
        setup={"userAgent": "Before", "deviceScaleFactor": 1.5, "timezone": "UTC"},
    )
    emulation = Emulation.of(changed(start, device="Phone"), DEVICES)
    assert (emulation.width, emulation.height, emulation.scale) == (390, 664, 3.0)
    assert (emulation.user_agent, emulation.timezone) == ("PhoneUA", "UTC")
    with_viewport = changed(start, device="Phone", viewport={"width": 300, "height": 500})
    assert Emulation.of(with_viewport, DEVICES).width == 300


def test_an_unknown_device_is_invalid_device_naming_the_field() -> None:
    with pytest.raises(TaskFailure) as caught:
        Emulation.of(changed(look(), device="Nokia 3310"), DEVICES)
    assert caught.value.code is ErrorCode.INVALID_DEVICE
    assert caught.value.message.startswith("device: 'Nokia 3310'")
