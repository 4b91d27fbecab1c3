"""Task specs run in real Chromium against local pages: actions, steps and error codes."""

import asyncio
import struct
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import Capture
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.errors import TaskFailure
from farm_agent.settings import AgentSettings
from farm_core.free_ports import free_port
from farm_core.task_errors import ErrorCode
from tests.pages import Site

pytestmark = pytest.mark.integration


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from a JPEG's start-of-frame segment."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    position = 2
    while position < len(data):
        marker, length = (
            data[position + 1],
            struct.unpack(">H", data[position + 2 : position + 4])[0],
        )
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        position += 2 + length
    raise AssertionError("no start-of-frame segment in the JPEG")


@pytest.fixture
def runner(
    shared_pool: BrowserPool, make_settings: Callable[..., AgentSettings]
) -> BrowserSpecRunner:
    return BrowserSpecRunner(shared_pool, make_settings(max_result_text_bytes=200))


def spec(url: str, **fields: Any) -> tasks_pb2.TaskSpec:
    return tasks_pb2.TaskSpec(url=url, timeout_ms=10_000, **fields)


async def failure_of(runner: BrowserSpecRunner, task: tasks_pb2.TaskSpec) -> TaskFailure:
    with pytest.raises(TaskFailure) as caught:
        await runner.run(task)
    return caught.value


def only_artifact(capture: Capture) -> bytes:
    assert len(capture.artifacts) == 1
    return capture.artifacts[0].data


async def test_screenshot_is_a_png_of_the_viewport_size(
    runner: BrowserSpecRunner, site: Site
) -> None:
    capture = await runner.run(
        spec(
            site.url("/page"),
            screenshot=tasks_pb2.ScreenshotOptions(),
            viewport=tasks_pb2.Viewport(width=640, height=480),
        )
    )
    artifact = capture.artifacts[0]
    assert (artifact.name, artifact.kind, artifact.content_type) == (
        "screenshot",
        tasks_pb2.ARTIFACT_KIND_SCREENSHOT,
        "image/png",
    )
    assert png_size(artifact.data) == (640, 480)
    assert capture.result.http_status == 200
    assert capture.result.final_url == site.url("/page")
    assert capture.result.title == "Test page"


async def test_default_viewport_is_1280_by_800(runner: BrowserSpecRunner, site: Site) -> None:
    capture = await runner.run(spec(site.url("/page"), screenshot=tasks_pb2.ScreenshotOptions()))
    assert png_size(only_artifact(capture)) == (1280, 800)


async def test_full_page_screenshot_is_taller_than_the_viewport(
    runner: BrowserSpecRunner, site: Site
) -> None:
    capture = await runner.run(
        spec(
            site.url("/tall"),
            screenshot=tasks_pb2.ScreenshotOptions(full_page=True),
            viewport=tasks_pb2.Viewport(width=800, height=600),
        )
    )
    width, height = png_size(only_artifact(capture))
    assert width == 800
    assert height > 3000


async def test_jpeg_screenshot_has_the_viewport_size(runner: BrowserSpecRunner, site: Site) -> None:
    capture = await runner.run(
        spec(
            site.url("/page"),
            screenshot=tasks_pb2.ScreenshotOptions(format=tasks_pb2.IMAGE_FORMAT_JPEG, quality=50),
            viewport=tasks_pb2.Viewport(width=500, height=300),
        )
    )
    assert capture.artifacts[0].content_type == "image/jpeg"
    assert jpeg_size(capture.artifacts[0].data) == (500, 300)


async def test_selector_screenshot_has_the_element_size(
    runner: BrowserSpecRunner, site: Site
) -> None:
    capture = await runner.run(
        spec(site.url("/box"), screenshot=tasks_pb2.ScreenshotOptions(selector="#box"))
    )
    assert png_size(only_artifact(capture)) == (300, 200)


async def test_device_emulation_uses_the_device_viewport(
    runner: BrowserSpecRunner, site: Site
) -> None:
    capture = await runner.run(
        spec(site.url("/page"), screenshot=tasks_pb2.ScreenshotOptions(), device="iPhone 13")
    )
    # iPhone 13: 390x664 CSS pixels at device scale factor 3 (Chromium may round a pixel off).
    width, height = png_size(only_artifact(capture))
    assert width == 390 * 3
    assert abs(height - 664 * 3) <= 2


async def test_pdf_is_a_pdf_document(runner: BrowserSpecRunner, site: Site) -> None:
    capture = await runner.run(
        spec(
            site.url("/page"),
            pdf=tasks_pb2.PdfOptions(paper_format="Letter", landscape=True, print_background=True),
        )
    )
    artifact = capture.artifacts[0]
    assert (artifact.name, artifact.content_type) == ("pdf", "application/pdf")
    assert artifact.data.startswith(b"%PDF")


async def test_html_content_is_cut_in_the_result_and_whole_in_the_artifact(
    runner: BrowserSpecRunner,
    site: Site,
) -> None:
    capture = await runner.run(spec(site.url("/page"), content=tasks_pb2.ContentOptions()))
    artifact = capture.artifacts[0]
    assert (artifact.name, artifact.content_type) == ("content", "text/html; charset=utf-8")
    html = artifact.data.decode()
    assert "<h1>Hello, farm</h1>" in html
    # The runner's limit in these tests is 200 bytes.
    assert capture.result.text == html.encode()[:200].decode()


async def test_text_content_is_the_rendered_body_text(
    runner: BrowserSpecRunner, site: Site
) -> None:
    capture = await runner.run(
        spec(
            site.url("/form"),
            content=tasks_pb2.ContentOptions(format=tasks_pb2.CONTENT_FORMAT_TEXT),
        )
    )
    assert capture.artifacts[0].content_type == "text/plain; charset=utf-8"
    assert capture.result.text.startswith("Go")
    assert "nothing yet" in capture.artifacts[0].data.decode()
    assert "<p" not in capture.artifacts[0].data.decode()


async def test_extract_takes_text_attributes_and_lists(
    runner: BrowserSpecRunner, site: Site
) -> None:
    fields = {
        "heading": "h1",
        "firstLink": "a@href",
        "fruits": "li[]",
        "ids": "a@data-id[]",
        "missing": "h6",
        "noneOfThese": "h6[]",
    }
    capture = await runner.run(
        spec(site.url("/page"), extract=tasks_pb2.ExtractOptions(fields=fields))
    )
    assert json_format.MessageToDict(capture.result.json) == {
        "heading": "Hello, farm",
        "firstLink": "/one",
        "fruits": ["apple", "pear", "plum"],
        "ids": ["1", "2"],
        "missing": None,
        "noneOfThese": [],
    }
    assert capture.artifacts == []


async def test_script_returns_its_json_value(runner: BrowserSpecRunner, site: Site) -> None:
    source = "() => ({title: document.title, items: document.querySelectorAll('li').length})"
    capture = await runner.run(
        spec(site.url("/page"), script=tasks_pb2.ScriptOptions(source=source))
    )
    assert json_format.MessageToDict(capture.result.json) == {"title": "Test page", "items": 3}


async def test_fill_and_click_steps_change_the_page(runner: BrowserSpecRunner, site: Site) -> None:
    steps = [
        tasks_pb2.Step(fill=tasks_pb2.FillStep(selector="#q", value="cheese")),
        tasks_pb2.Step(click="#go"),
        tasks_pb2.Step(wait_for="#out"),
        tasks_pb2.Step(scroll="bottom"),
        tasks_pb2.Step(press="Tab"),
    ]
    capture = await runner.run(
        spec(
            site.url("/form"),
            steps=steps,
            extract=tasks_pb2.ExtractOptions(fields={"out": "#out"}),
        )
    )
    assert json_format.MessageToDict(capture.result.json) == {"out": "You asked: cheese"}


async def test_a_slow_page_fails_with_timeout(runner: BrowserSpecRunner, site: Site) -> None:
    task = tasks_pb2.TaskSpec(
        url=site.url("/slow?ms=5000"), timeout_ms=1000, content=tasks_pb2.ContentOptions()
    )
    failure = await failure_of(runner, task)
    assert failure.code is ErrorCode.TIMEOUT


async def test_a_missing_element_fails_with_selector_not_found(
    runner: BrowserSpecRunner, site: Site
) -> None:
    task = tasks_pb2.TaskSpec(
        url=site.url("/page"),
        timeout_ms=2000,
        steps=[tasks_pb2.Step(click="#no-such-button")],
        screenshot=tasks_pb2.ScreenshotOptions(),
    )
    failure = await failure_of(runner, task)
    assert failure.code is ErrorCode.SELECTOR_NOT_FOUND
    assert failure.message.startswith("steps[0].click:")


async def test_a_step_that_failed_in_time_is_not_turned_to_timeout_by_a_slow_close(
    runner: BrowserSpecRunner, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A loaded machine: closing the context takes longer than the margin the step left.
    close_context = BrowserPool.close_context

    async def slow_close(pool: BrowserPool, *args: Any) -> None:
        await asyncio.sleep(1.0)
        await close_context(pool, *args)

    monkeypatch.setattr(BrowserPool, "close_context", slow_close)
    task = tasks_pb2.TaskSpec(
        url=site.url("/page"), timeout_ms=3000, steps=[tasks_pb2.Step(click="#no-such-button")]
    )
    failure = await failure_of(runner, task)
    assert failure.code is ErrorCode.SELECTOR_NOT_FOUND
    assert failure.message.startswith("steps[0].click:")


async def test_a_missing_screenshot_element_fails_with_selector_not_found(
    runner: BrowserSpecRunner,
    site: Site,
) -> None:
    task = tasks_pb2.TaskSpec(
        url=site.url("/page"),
        timeout_ms=2000,
        screenshot=tasks_pb2.ScreenshotOptions(selector="#nope"),
    )
    failure = await failure_of(runner, task)
    assert failure.code is ErrorCode.SELECTOR_NOT_FOUND
    assert failure.message.startswith("screenshot.selector:")


async def test_a_hidden_screenshot_element_fails_saying_it_matches_but_is_not_visible(
    runner: BrowserSpecRunner,
    site: Site,
) -> None:
    task = tasks_pb2.TaskSpec(
        url=site.url("/widgets"),
        timeout_ms=3000,
        screenshot=tasks_pb2.ScreenshotOptions(selector="#hidden"),
    )
    failure = await failure_of(runner, task)
    assert failure.code is ErrorCode.SELECTOR_NOT_FOUND
    assert failure.message.startswith(
        'screenshot.selector: "#hidden" matches, but it is not visible'
    )


async def test_an_unknown_device_fails_with_invalid_device(
    runner: BrowserSpecRunner, site: Site
) -> None:
    failure = await failure_of(
        runner,
        spec(site.url("/page"), device="Nokia 3310", screenshot=tasks_pb2.ScreenshotOptions()),
    )
    assert failure.code is ErrorCode.INVALID_DEVICE
    assert "'Nokia 3310'" in failure.message


async def test_an_unreachable_site_fails_with_navigation_failed(
    runner: BrowserSpecRunner, site: Site
) -> None:
    # A port nothing listens on: the connection is refused.
    failure = await failure_of(
        runner, spec(f"http://127.0.0.1:{free_port()}/", content=tasks_pb2.ContentOptions())
    )
    assert failure.code is ErrorCode.NAVIGATION_FAILED
    assert "cannot connect to 127.0.0.1" in failure.message


async def test_a_port_chromium_refuses_fails_with_blocked_url(runner: BrowserSpecRunner) -> None:
    failure = await failure_of(
        runner, spec("http://127.0.0.1:9/", content=tasks_pb2.ContentOptions())
    )
    assert failure.code is ErrorCode.BLOCKED_URL
    assert "ERR_UNSAFE_PORT" in failure.message


async def test_a_throwing_script_fails_with_script_failed(
    runner: BrowserSpecRunner, site: Site
) -> None:
    failure = await failure_of(
        runner,
        spec(
            site.url("/page"),
            script=tasks_pb2.ScriptOptions(source="() => { throw new Error('boom') }"),
        ),
    )
    assert failure.code is ErrorCode.SCRIPT_FAILED
    assert "boom" in failure.message


async def test_a_script_of_statements_fails_with_a_hint_to_write_a_function(
    runner: BrowserSpecRunner, site: Site
) -> None:
    failure = await failure_of(
        runner,
        spec(site.url("/page"), script=tasks_pb2.ScriptOptions(source="return document.title")),
    )
    assert failure.code is ErrorCode.SCRIPT_FAILED
    assert failure.message == (
        "script.source: SyntaxError: Illegal return statement; script.source must be a "
        'function expression such as "() => document.title", not statements'
    )


async def test_a_syntax_error_a_function_throws_gets_no_hint(
    runner: BrowserSpecRunner, site: Site
) -> None:
    failure = await failure_of(
        runner,
        spec(site.url("/page"), script=tasks_pb2.ScriptOptions(source="() => JSON.parse('{')")),
    )
    assert failure.code is ErrorCode.SCRIPT_FAILED
    assert failure.message.startswith("script.source: SyntaxError")
    assert "function expression" not in failure.message


async def test_a_missing_page_still_succeeds_with_its_http_status(
    runner: BrowserSpecRunner, site: Site
) -> None:
    capture = await runner.run(spec(site.url("/missing"), content=tasks_pb2.ContentOptions()))
    assert capture.result.http_status == 404
