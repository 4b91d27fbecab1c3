"""An element reference the page does not have: the tool says where references come from."""

from typing import Any

import grpc

from farm.tasks.v1 import tasks_pb2
from farm_mcp_tools import commands
from farm_mcp_tools.farm import FarmCallFailed
from tests.unit.mcp.fake_farm import FakeFarm, page_result, texts

NOT_FOUND = 'SELECTOR_NOT_FOUND: steps[0].hover: no element matches "aria-ref=e5" (Timeout)'


def not_found() -> FarmCallFailed:
    return FarmCallFailed(grpc.StatusCode.FAILED_PRECONDITION, NOT_FOUND)


async def test_a_reference_before_any_snapshot_says_to_take_one_first(
    client_for: Any, farm: FakeFarm
) -> None:
    farm.results += [page_result(), not_found()]
    async with client_for() as client:
        await client.call_tool("navigate", {"url": "http://site/form"})
        result = await client.call_tool("hover", {"selector": "e5"})
    assert result.is_error
    assert texts(result) == (
        f"Error executing tool hover: the farm refused: FAILED_PRECONDITION: {NOT_FOUND}; "
        "e5 is a reference from a snapshot, and none has been taken of this browser yet: "
        "call snapshot first (references come from the latest snapshot), or give a CSS selector"
    )


async def test_a_reference_not_found_after_a_snapshot_says_to_take_a_new_one(
    client_for: Any, farm: FakeFarm
) -> None:
    farm.results += [page_result(text='- button "Go" [ref=e1]'), not_found()]
    async with client_for() as client:
        await client.call_tool("snapshot", {})
        result = await client.call_tool("click", {"selector": "ref=e5"})
    assert texts(result).endswith(
        "; references come from the latest snapshot: take a new one after the page changes"
    )


async def test_a_reference_found_on_an_element_of_the_wrong_kind_gets_no_word_on_references(
    client_for: Any, farm: FakeFarm
) -> None:
    wrong_kind = (
        "SELECTOR_NOT_FOUND: steps[0].fill.selector: Error: Element is not an <input>, "
        '<textarea> or [contenteditable] element ("aria-ref=e5")'
    )
    farm.results += [
        page_result(text='- combobox "Color" [ref=e5]'),
        FarmCallFailed(grpc.StatusCode.FAILED_PRECONDITION, wrong_kind),
    ]
    async with client_for() as client:
        await client.call_tool("snapshot", {})
        result = await client.call_tool("fill", {"selector": "e5", "value": "Ada"})
    assert result.is_error
    assert texts(result).endswith(wrong_kind)


async def test_a_css_selector_not_found_gets_no_word_on_references(
    client_for: Any, farm: FakeFarm
) -> None:
    farm.results.append(not_found())
    async with client_for() as client:
        result = await client.call_tool("click", {"selector": "#nope"})
    assert texts(result).endswith("(Timeout)")


def test_the_references_of_a_command_are_found_wherever_they_are() -> None:
    pressed = commands.press("Enter", "e3")
    filled = commands.steps(tasks_pb2.Step(fill=tasks_pb2.FillStep(selector="aria-ref=f1e2")))
    assert commands.snapshot_refs(pressed) == ["e3"]
    assert commands.snapshot_refs(filled) == ["f1e2"]
    assert commands.snapshot_refs(commands.click("#buy")) == []


def test_an_extract_rule_takes_a_reference_as_its_selector_keeping_the_rest() -> None:
    rules = {"e5": "aria-ref=e5", "f1e2@href": "aria-ref=f1e2@href", "[ref=e3][]": "aria-ref=e3[]"}
    rules |= {"ref=f2e10@data-x[]": "aria-ref=f2e10@data-x[]", "a@href[]": "a@href[]", "#e5": "#e5"}
    assert {rule: commands.extract_rule(rule) for rule in rules} == rules
