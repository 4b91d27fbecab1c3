"""The screenshot and pdf tools take a task's capture options, by the tools' snake_case names."""

from typing import Any

import pytest

from farm.tasks.v1 import tasks_pb2
from tests.unit.mcp.fake_farm import FakeFarm, page_result, texts

CAPTURE_OPTIONS = {
    "screenshot": {"omit_background", "clip"},
    "pdf": {"margin", "page_ranges", "prefer_css_page_size", "scale"},
}


async def test_a_screenshots_clip_and_background_reach_the_farm(
    client_for: Any, farm: FakeFarm
) -> None:
    farm.results.append(page_result())
    clip = {"x": 10, "y": 20.5, "width": 30, "height": 40}
    async with client_for() as client:
        await client.call_tool("screenshot", {"omit_background": True, "clip": clip})
    sent = farm.commands[0].screenshot
    assert sent.omit_background
    assert sent.HasField("clip")
    assert (sent.clip.x, sent.clip.y, sent.clip.width, sent.clip.height) == (10, 20.5, 30, 40)


async def test_a_screenshot_without_a_clip_sends_none(client_for: Any, farm: FakeFarm) -> None:
    farm.results.append(page_result())
    async with client_for() as client:
        await client.call_tool("screenshot", {})
    assert not farm.commands[0].screenshot.HasField("clip")
    assert not farm.commands[0].screenshot.omit_background


async def test_a_pdfs_margin_pages_css_size_and_scale_reach_the_farm(
    client_for: Any, farm: FakeFarm
) -> None:
    farm.results.append(page_result())
    arguments = {
        "margin": {"top": "1cm", "left": "20px"},
        "page_ranges": "1-3, 5",
        "prefer_css_page_size": True,
        "scale": 0.5,
    }
    async with client_for() as client:
        await client.call_tool("pdf", arguments)
    sent = farm.commands[0].pdf
    assert sent.margin == tasks_pb2.PdfMargin(top="1cm", left="20px")
    assert (sent.page_ranges, sent.prefer_css_page_size, sent.scale) == ("1-3, 5", True, 0.5)


@pytest.mark.parametrize(
    ("tool", "arguments", "said"),
    [
        ("pdf", {"scale": 5}, "scale: Input should be less than or equal to 2, got 5"),
        ("pdf", {"margin": {"up": "1cm"}}, "margin.up: Extra inputs are not permitted"),
        (
            "screenshot",
            {"clip": {"x": 0, "y": 0, "width": 0, "height": 10}},
            "clip.width: Input should be greater than 0, got 0",
        ),
        (
            "screenshot",
            {"clip": {"x": -1, "y": 0, "width": 5, "height": 10}},
            "clip.x: Input should be greater than or equal to 0, got -1",
        ),
        ("screenshot", {"clip": {"x": 0, "y": 0, "width": 5}}, "clip.height: required"),
    ],
    ids=[
        "scale-above-2",
        "margin-unknown-side",
        "clip-width-0",
        "clip-x-negative",
        "clip-no-height",
    ],
)
async def test_options_out_of_their_bounds_are_refused_naming_them(
    client_for: Any, farm: FakeFarm, tool: str, arguments: dict[str, Any], said: str
) -> None:
    async with client_for() as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert said in texts(result)
    assert farm.commands == []


async def test_each_capture_option_is_described_to_the_assistant(client_for: Any) -> None:
    async with client_for() as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name, options in CAPTURE_OPTIONS.items():
        schema = tools[name].input_schema
        for option in options:
            assert schema["properties"][option].get("description"), f"{name}.{option}"
        for model in schema.get("$defs", {}).values():
            for field, declared in model["properties"].items():
                assert declared.get("description"), f"{name}: {field} of {model['title']}"
