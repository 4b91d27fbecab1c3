"""What the trial missed: press, a bounded snapshot, dialogs of value tools, cookies round trip."""

import json
from typing import Any

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_mcp_tools.runner import ToolLimits
from tests.unit.mcp.fake_farm import FakeFarm, page_result, texts


async def test_press_sends_the_key_after_focusing_the_element_it_names(
    client_for: Any, farm: FakeFarm
) -> None:
    async with client_for() as client:
        in_box = await client.call_tool("press", {"key": "Enter", "selector": "e3"})
        focused = await client.call_tool("press", {"key": "Control+A"})
        empty = await client.call_tool("press", {"key": " "})
    assert not in_box.is_error and texts(in_box).startswith("Pressed Enter in e3.")
    assert not focused.is_error
    assert empty.is_error and "key: give a key" in texts(empty)
    first, second = farm.commands
    assert list(first.steps) == [
        tasks_pb2.Step(click="aria-ref=e3"),
        tasks_pb2.Step(press="Enter"),
    ]
    assert list(second.steps) == [tasks_pb2.Step(press="Control+A")]
    assert first.timeout_ms == ToolLimits().action_ms


async def test_a_large_snapshot_is_cut_with_a_note_saying_how_to_narrow_it(
    client_for: Any, farm: FakeFarm
) -> None:
    tree = "\n".join(f'- button "Item {n}" [ref=e{n}]' for n in range(3000))
    farm.results.append(page_result(text=tree))
    async with client_for(ToolLimits(max_text_chars=1000)) as client:
        result = await client.call_tool("snapshot", {})
    answer = texts(result)
    assert not result.is_error
    assert answer.startswith('Page: "Form" at http://site/form\n\n' + tree[:1000])
    assert f"[cut after 1000 of {len(tree)} characters; " in answer
    assert "extract" in answer and "CSS selectors" in answer
    assert len(answer) < 1400


CONFIRM = tasks_pb2.PageDialog(type="confirm", message="Are you sure?", timeout_seconds=60)


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("evaluate", {"script": "confirm('Are you sure?')"}),
        ("extract", {"fields": {"title": "h1"}}),
        ("screenshot", {}),
        ("pdf", {}),
    ],
)
async def test_a_dialog_that_interrupts_a_value_tool_is_said_as_click_says_it(
    client_for: Any, farm: FakeFarm, tool: str, arguments: dict[str, Any]
) -> None:
    farm.results.append(page_result(dialog=CONFIRM))
    async with client_for() as client:
        result = await client.call_tool(tool, arguments)
    assert not result.is_error, texts(result)
    # The same words from each (not "The farm returned no screenshot."), then the notice.
    assert texts(result).startswith("The page opened a dialog before this tool had its answer.")
    assert "A confirm dialog is showing: 'Are you sure?'" in texts(result)
    assert "Answer it with handle_dialog" in texts(result)


async def test_an_alert_is_said_with_its_article(client_for: Any, farm: FakeFarm) -> None:
    alert = tasks_pb2.PageDialog(type="alert", message="Saved", timeout_seconds=60)
    farm.results.append(page_result(dialog=alert))
    async with client_for() as client:
        result = await client.call_tool("click", {"selector": "#save"})
    assert "An alert dialog is showing: 'Saved', on the page at http://site/form." in texts(result)


async def test_the_cookies_get_cookies_answers_are_taken_by_set_cookies(
    client_for: Any, farm: FakeFarm
) -> None:
    cookie = tasks_pb2.Cookie(
        name="sid", value="1", domain="site", path="/", same_site=tasks_pb2.SAME_SITE_LAX
    )
    farm.results.append(page_result(cookies=[cookie]))
    async with client_for() as client:
        got = json.loads(texts(await client.call_tool("get_cookies", {})))
        again = await client.call_tool("set_cookies", {"cookies": got})
        enum_name = await client.call_tool(
            "set_cookies",
            {
                "cookies": [
                    {
                        "name": "a",
                        "value": "b",
                        "url": "http://site/",
                        "same_site": "SAME_SITE_STRICT",
                    }
                ]
            },
        )
    assert got[0]["same_site"] == "Lax"
    assert not again.is_error, texts(again)
    assert not enum_name.is_error, texts(enum_name)
    assert farm.commands[1].setup.cookies[0] == cookie
    assert farm.commands[2].setup.cookies[0].same_site == tasks_pb2.SAME_SITE_STRICT


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (tasks_pb2.ScreencastStatus(), "no screencast was running"),
        (
            tasks_pb2.ScreencastStatus(format=tasks_pb2.VIDEO_FORMAT_GIF, seconds=0.3),
            "the screencast recorded no frame",
        ),
    ],
)
async def test_a_stop_that_stored_no_video_says_why(
    client_for: Any, farm: FakeFarm, status: tasks_pb2.ScreencastStatus, why: str
) -> None:
    farm.results.append(page_result(screencast=status))
    async with client_for() as client:
        result = await client.call_tool("stop_screencast", {})
    assert not result.is_error
    assert f"\nNo video was stored: {why}" in texts(result)
