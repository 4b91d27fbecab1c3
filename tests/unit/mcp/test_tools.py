"""The MCP tools against a fake farm: names, arguments, the commands sent, answers, errors."""

import base64
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from mcp.types import ImageContent

from farm.tasks.v1 import tasks_pb2
from farm_mcp_tools.browser import BrowserSettings
from farm_mcp_tools.farm import FarmCallFailed
from farm_mcp_tools.runner import ToolLimits
from tests.mcp_tool_names import TOOL_NAMES
from tests.unit.mcp.fake_farm import PNG, FakeFarm, page_result, texts


async def test_the_instructions_tell_the_assistant_to_answer_dialogs(client_for: Any) -> None:
    async with client_for() as client:
        instructions = client.instructions or ""
    # Dialogs wait for handle_dialog (other tools fail DIALOG_SHOWING meanwhile).
    assert "handle_dialog" in instructions
    assert "dismissed at once" not in instructions


async def test_arguments_that_do_not_fit_name_each_bad_one_in_a_line(client_for: Any) -> None:
    async with client_for() as client:
        missing = await client.call_tool("fill", {"selector": "#q"})
        wrong = await client.call_tool("screenshot", {"format": "gif", "quality": 500})
    assert missing.is_error and wrong.is_error
    assert texts(missing) == "Error executing tool fill: value: required"
    text = texts(wrong)
    assert text.startswith("Error executing tool screenshot: format: Input should be 'png'")
    assert "got 'gif'" in text and "quality: " in text and "got 500" in text
    assert "pydantic" not in text and "Arguments" not in text


async def test_arguments_a_tool_does_not_have_are_refused_naming_them(
    client_for: Any, farm: FakeFarm
) -> None:
    async with client_for() as client:
        camel = await client.call_tool("screenshot", {"fullPage": True})
        stray = await client.call_tool("navigate", {"url": "https://example.com", "wait": "load"})
        none = await client.call_tool("snapshot", {"depth": 2})
    assert camel.is_error and stray.is_error and none.is_error
    assert texts(camel) == (
        "Error executing tool screenshot: fullPage: not an argument of this tool; "
        "did you mean full_page?"
    )
    assert texts(stray) == (
        "Error executing tool navigate: wait: not an argument of this tool "
        "(it takes: url, wait_until)"
    )
    assert texts(none).endswith("depth: not an argument of this tool (it takes: none)")
    assert farm.commands == []


async def test_tool_descriptions_are_not_indented(client_for: Any) -> None:
    async with client_for() as client:
        listed = (await client.list_tools()).tools
    for tool in listed:
        lines = (tool.description or "").splitlines()
        assert all(line == line.strip() for line in lines), (tool.name, lines)


async def test_every_tool_of_the_contract_is_listed_with_described_arguments(
    client_for: Any,
) -> None:
    async with client_for() as client:
        listed = (await client.list_tools()).tools
    assert {tool.name for tool in listed} == TOOL_NAMES
    for tool in listed:
        assert tool.description, tool.name
        for name, schema in tool.input_schema.get("properties", {}).items():
            assert schema.get("description"), f"{tool.name}.{name} has no description"
    fill = next(tool for tool in listed if tool.name == "fill")
    assert set(fill.input_schema["required"]) == {"selector", "value"}


async def test_the_first_call_opens_one_session_and_later_calls_reuse_it(
    client_for: Any, farm: FakeFarm
) -> None:
    async with client_for() as client:
        await client.call_tool("navigate", {"url": "http://site/form"})
        await client.call_tool("fill", {"selector": "#q", "value": "farm"})
        await client.call_tool("click", {"selector": "e5"})
    assert len(farm.opened) == 1
    assert farm.opened[0].idle_timeout_seconds == BrowserSettings().idle_timeout_seconds
    navigate, fill, click = farm.commands
    assert navigate.url == "http://site/form"
    assert navigate.wait_until == tasks_pb2.WAIT_UNTIL_LOAD
    assert fill.steps[0].fill == tasks_pb2.FillStep(selector="#q", value="farm")
    # A snapshot reference as the model reads it becomes Playwright's aria-ref selector.
    assert click.steps[0].click == "aria-ref=e5"
    assert navigate.timeout_ms == ToolLimits().command_ms
    # An element that is not there is said within the shorter action limit.
    assert fill.timeout_ms == click.timeout_ms == ToolLimits().action_ms
    assert farm.credentials[0] == (("authorization", "Bearer bf_test"),)


async def test_a_screenshot_is_an_image_with_its_artifact_link(
    client_for: Any, farm: FakeFarm
) -> None:
    ref = tasks_pb2.ArtifactRef(
        id="art_1", kind=tasks_pb2.ARTIFACT_KIND_SCREENSHOT, content_type="image/png", size_bytes=12
    )
    farm.results.append(page_result(artifacts=[ref]))
    async with client_for() as client:
        result = await client.call_tool("screenshot", {"full_page": True})
    assert not result.is_error
    image = next(block for block in result.content if isinstance(block, ImageContent))
    assert base64.b64decode(image.data) == PNG
    assert image.mime_type == "image/png"
    assert "http://farm/v1/artifacts/art_1:content" in texts(result)
    assert farm.commands[0].screenshot.full_page


async def test_a_screenshot_with_a_key_of_scope_sessions_alone_is_its_link(
    client_for: Any, farm: FakeFarm
) -> None:
    # API.md asks only `sessions` of an MCP key; reading the image needs artifacts.read.
    async def refused(artifact_id: str, credentials: Any, time_limit: float) -> Any:
        raise FarmCallFailed(grpc.StatusCode.PERMISSION_DENIED, "lacks 'artifacts.read'")

    farm.artifact = refused  # type: ignore[method-assign]
    farm.results.append(screenshot_of(12))
    async with client_for() as client:
        result = await client.call_tool("screenshot", {})
    assert not result.is_error, texts(result)
    assert not any(isinstance(block, ImageContent) for block in result.content)
    assert "http://farm/v1/artifacts/art_1:content" in texts(result)
    assert "lacks the scope 'artifacts.read'" in texts(result)


def screenshot_of(size_bytes: int, content_type: str = "image/png") -> tasks_pb2.TaskResult:
    kind = tasks_pb2.ARTIFACT_KIND_SCREENSHOT
    ref = tasks_pb2.ArtifactRef(
        id="art_1", kind=kind, content_type=content_type, size_bytes=size_bytes
    )
    return page_result(artifacts=[ref])


async def test_a_screenshot_too_large_for_one_http_message_is_a_link_with_a_way_out(
    client_for: Any, farm: FakeFarm
) -> None:
    # 800 KiB is over 1 MiB in base64: the MCP SDK's HTTP client refuses such a message.
    farm.results.append(screenshot_of(800 * 1024))
    async with client_for() as client:
        result = await client.call_tool("screenshot", {"full_page": True})
    assert not result.is_error
    assert not any(isinstance(block, ImageContent) for block in result.content)
    assert "http://farm/v1/artifacts/art_1:content" in texts(result)
    assert "too large to show here" in texts(result)
    assert "full_page false" in texts(result)


async def test_an_empty_screenshot_is_a_tool_error_saying_what_to_take_instead(
    client_for: Any, farm: FakeFarm
) -> None:
    farm.results.append(screenshot_of(0, "image/jpeg"))
    async with client_for() as client:
        result = await client.call_tool("screenshot", {"full_page": True, "format": "jpeg"})
    assert result.is_error
    assert "empty image" in texts(result) and "take a png" in texts(result)


async def test_a_long_script_value_is_cut_with_a_note(client_for: Any, farm: FakeFarm) -> None:
    value = struct_pb2.Value(string_value="x" * 500)
    farm.results.append(page_result(json=value))
    async with client_for(ToolLimits(max_text_chars=100)) as client:
        result = await client.call_tool("evaluate", {"script": "'x'.repeat(500)"})
    assert texts(result) == '"' + "x" * 99 + "\n\n[cut after 100 of 502 characters]"


async def test_a_farm_refusal_is_a_tool_error_with_the_farms_words(
    client_for: Any, farm: FakeFarm
) -> None:
    farm.results.append(
        FarmCallFailed(
            grpc.StatusCode.FAILED_PRECONDITION, "SELECTOR_NOT_FOUND: steps[0].click: #nope"
        )
    )
    async with client_for() as client:
        result = await client.call_tool("click", {"selector": "#nope"})
    assert result.is_error
    assert texts(result) == (
        "Error executing tool click: the farm refused: "
        "FAILED_PRECONDITION: SELECTOR_NOT_FOUND: steps[0].click: #nope"
    )


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (grpc.StatusCode.UNAVAILABLE, "the farm is unavailable"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "the farm did not answer in time"),
    ],
)
async def test_a_farm_that_did_not_answer_is_not_said_to_have_refused(
    client_for: Any, farm: FakeFarm, code: grpc.StatusCode, words: str
) -> None:
    farm.results.append(FarmCallFailed(code, "scheduler: no healthy upstream"))
    async with client_for() as client:
        result = await client.call_tool("click", {"selector": "#buy"})
    assert result.is_error
    assert texts(result) == (
        f"Error executing tool click: {words}: {code.name}: scheduler: no healthy upstream"
    )


async def test_a_closed_session_is_said_and_the_next_call_opens_another(
    client_for: Any, farm: FakeFarm
) -> None:
    farm.results.append(
        FarmCallFailed(
            grpc.StatusCode.FAILED_PRECONDITION, "session ses_1 is closed (IDLE_TIMEOUT)"
        )
    )
    async with client_for() as client:
        first = await client.call_tool("snapshot", {})
        await client.call_tool("navigate", {"url": "http://site/form"})
    assert first.is_error
    assert "ses_1 is closed (IDLE_TIMEOUT)" in texts(first)
    assert "the next tool call opens a new one" in texts(first)
    assert len(farm.opened) == 2


async def test_bad_arguments_are_tool_errors_before_any_farm_call(
    client_for: Any, farm: FakeFarm
) -> None:
    async with client_for() as client:
        select = await client.call_tool("select", {"selector": "#fruit"})
        both = await client.call_tool(
            "select", {"selector": "#fruit", "value": "pear", "label": "Pear"}
        )
        wait = await client.call_tool("wait_for", {"text": "x", "time_ms": 5})
        emulate = await client.call_tool("emulate_device", {"width": 300})
    assert select.is_error and "give the option's value or its label" in texts(select)
    assert both.is_error and "value or its label, not both" in texts(both)
    assert wait.is_error and "exactly one of selector, text, time_ms or network_idle" in texts(wait)
    assert emulate.is_error and "width and height together" in texts(emulate)
    assert farm.commands == []


async def test_a_call_longer_than_the_tool_time_limit_is_a_tool_error(
    client_for: Any, farm: FakeFarm
) -> None:
    async def hang(*args: Any, **kwargs: Any) -> Any:
        import anyio

        await anyio.sleep(30)

    farm.run_command = hang  # type: ignore[method-assign]
    # Over STILL_OPENING_MARGIN_SECONDS: the call waits for its session's opening (the
    # fake's is at once) for the difference; at 0.3 s it waited 1 ms, which a loaded
    # machine could miss, and the call said "not opened yet" instead.
    async with client_for(ToolLimits(call_seconds=1.0)) as client:
        result = await client.call_tool("navigate", {"url": "http://site/slow"})
    assert result.is_error
    assert "did not finish within the tool time limit of 1 s" in texts(result)


async def test_console_tools_keep_what_was_collected_since_the_browser_opened(
    client_for: Any, farm: FakeFarm
) -> None:
    farm.results += [
        page_result(console=[tasks_pb2.ConsoleMessage(level="log", text="ready")]),
        page_result(
            console=[tasks_pb2.ConsoleMessage(level="error", text="boom", source="app.js:3")]
        ),
        page_result(),
    ]
    async with client_for() as client:
        first = await client.call_tool("get_console_logs", {})
        errors = await client.call_tool("get_console_errors", {})
        again = await client.call_tool("get_console_logs", {"level": "log"})
    assert texts(first) == "[log] ready"
    assert texts(errors) == "[error] boom (app.js:3)"
    assert texts(again) == "[log] ready"
    assert all(c.collect.console and not c.collect.network for c in farm.commands)


async def test_network_errors_are_the_failed_requests(client_for: Any, farm: FakeFarm) -> None:
    farm.results.append(
        page_result(
            network=[
                tasks_pb2.NetworkRequest(method="GET", url="http://site/ok", status=200),
                tasks_pb2.NetworkRequest(method="GET", url="http://site/missing", status=404),
                tasks_pb2.NetworkRequest(
                    method="GET", url="http://gone/x", failure="net::ERR_NAME_NOT_RESOLVED"
                ),
            ]
        )
    )
    async with client_for() as client:
        result = await client.call_tool("get_network_errors", {})
    lines = texts(result).splitlines()
    assert [line.split(" -> ")[0] for line in lines] == [
        "GET http://site/missing",
        "GET http://gone/x",
    ]


async def test_an_audit_answers_its_score_and_each_finding_with_its_fix(
    client_for: Any, farm: FakeFarm
) -> None:
    finding = tasks_pb2.AuditFinding(
        id="image-alt", title="Images must have alternate text.", impact="critical",
        hint="Add an alt attribute.", targets=["img.hero"],
    )  # fmt: skip
    audit = tasks_pb2.AuditResult(
        kind=tasks_pb2.AUDIT_KIND_ACCESSIBILITY, score=60, passed=9, findings=[finding]
    )
    farm.results.append(page_result(audit=tasks_pb2.AuditReport(results=[audit])))
    async with client_for() as client:
        result = await client.call_tool("run_accessibility_audit", {"url": "http://site/a11y"})
    assert "Accessibility audit: score 60/100, 9 checks passed, 1 failed." in texts(result)
    # A failed check reads as failed: what it wanted, then its hint (what failed, the fix).
    assert (
        "1. [critical] image-alt failed (wanted: Images must have alternate text). "
        "Add an alt attribute. Where: img.hero." in texts(result)
    )
    command = farm.commands[0]
    assert command.url == "http://site/a11y"
    assert list(command.audit.kinds) == [tasks_pb2.AUDIT_KIND_ACCESSIBILITY]


async def test_long_content_is_cut_with_a_link_to_all_of_it(
    client_for: Any, farm: FakeFarm
) -> None:
    ref = tasks_pb2.ArtifactRef(id="art_9", kind=tasks_pb2.ARTIFACT_KIND_CONTENT, size_bytes=5000)
    farm.results.append(page_result(text="x" * 5000, artifacts=[ref]))
    async with client_for(ToolLimits(max_text_chars=100)) as client:
        result = await client.call_tool("get_content", {"format": "html"})
    assert (
        "x" * 100
        + "\n\n[cut after 100 characters; all of it: http://farm/v1/artifacts/art_9:content]"
        in texts(result)
    )
    assert farm.commands[0].content.format == tasks_pb2.CONTENT_FORMAT_HTML


async def test_close_browser_closes_the_session_once(client_for: Any, farm: FakeFarm) -> None:
    async with client_for() as client:
        await client.call_tool("navigate", {"url": "http://site/form"})
        closed = await client.call_tool("close_browser", {})
        again = await client.call_tool("close_browser", {})
    assert farm.closed == ["ses_1"]
    assert texts(closed) == "Closed the browser (farm session ses_1)."
    assert texts(again) == "No browser was open."
