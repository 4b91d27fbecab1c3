"""Pages of unusual kinds in real Chromium: no body, 204 answers, failing steps, odd results.

Each test is a fault a user met: a result that waited out its time, an error that
named the wrong field or the wrong cause, a step that stopped short.
"""

from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.errors import TaskFailure
from farm_agent.settings import AgentSettings
from farm_core.task_errors import ErrorCode
from tests.pages import Site

pytestmark = pytest.mark.integration


@pytest.fixture
def runner(
    shared_pool: BrowserPool, make_settings: Callable[..., AgentSettings]
) -> BrowserSpecRunner:
    return BrowserSpecRunner(shared_pool, make_settings())


def spec(url: str, **fields: Any) -> tasks_pb2.TaskSpec:
    return tasks_pb2.TaskSpec(url=url, timeout_ms=15_000, **fields)


def text_of_page() -> tasks_pb2.ContentOptions:
    return tasks_pb2.ContentOptions(format=tasks_pb2.CONTENT_FORMAT_TEXT)


async def failure_of(runner: BrowserSpecRunner, task: tasks_pb2.TaskSpec) -> TaskFailure:
    with pytest.raises(TaskFailure) as caught:
        await runner.run(task)
    return caught.value


async def test_text_of_an_svg_document_is_its_text(runner: BrowserSpecRunner, site: Site) -> None:
    # It has no <body>: the text waited for one until the attempt's TIMEOUT, then retried.
    capture = await runner.run(spec(site.url("/asset/svg"), content=text_of_page()))
    assert capture.result.text == "Drawn text"
    assert capture.artifacts[0].data == b"Drawn text"
    assert capture.artifacts[0].content_type == "text/plain; charset=utf-8"


async def test_text_of_a_frameset_page_is_empty(runner: BrowserSpecRunner, site: Site) -> None:
    capture = await runner.run(spec(site.url("/frameset"), content=text_of_page()))
    assert capture.result.text == ""
    assert capture.result.title == "Frames"


async def test_scroll_to_bottom_reaches_content_outside_the_body(
    runner: BrowserSpecRunner, site: Site
) -> None:
    # The body is one heading tall; the page is 3000 px by an absolutely placed box.
    capture = await runner.run(
        spec(
            site.url("/outside-body"),
            viewport=tasks_pb2.Viewport(width=800, height=600),
            steps=[tasks_pb2.Step(scroll="bottom")],
            script=tasks_pb2.ScriptOptions(source="() => window.scrollY"),
        )
    )
    assert json_format.MessageToDict(capture.result)["json"] == 3000 - 600


async def test_scroll_to_bottom_of_a_body_less_document_does_not_fail(
    runner: BrowserSpecRunner, site: Site
) -> None:
    capture = await runner.run(
        spec(
            site.url("/asset/svg"),
            steps=[tasks_pb2.Step(scroll="bottom")],
            content=text_of_page(),
        )
    )
    assert capture.result.text == "Drawn text"


@pytest.mark.parametrize("status", [204, 205], ids=["204", "205"])
async def test_no_content_answer_fails_at_once_naming_it(
    runner: BrowserSpecRunner, site: Site, status: int
) -> None:
    # Chromium aborts the navigation and stays on its blank page: every retry would too.
    failure = await failure_of(
        runner, spec(site.url(f"/empty/{status}"), screenshot=tasks_pb2.ScreenshotOptions())
    )
    assert failure.code is ErrorCode.NAVIGATION_FAILED
    assert failure.message.startswith(f"url: the server answered HTTP {status} ")
    assert site.url(f"/empty/{status}") in failure.message
    assert not failure.retryable


async def test_no_content_answer_of_a_goto_step_names_the_step(
    runner: BrowserSpecRunner, site: Site
) -> None:
    failure = await failure_of(
        runner,
        spec(
            site.url("/page"),
            steps=[tasks_pb2.Step(goto=site.url("/empty/204"))],
            screenshot=tasks_pb2.ScreenshotOptions(),
        ),
    )
    assert failure.message.startswith("steps[0].goto: the server answered HTTP 204 No Content")
    assert not failure.retryable


async def test_http_error_of_a_goto_step_names_the_step(
    runner: BrowserSpecRunner, site: Site
) -> None:
    failure = await failure_of(
        runner,
        spec(
            site.url("/page"),
            fail_on_http_error=True,
            steps=[tasks_pb2.Step(goto=site.url("/status/404"))],
            screenshot=tasks_pb2.ScreenshotOptions(),
        ),
    )
    assert failure.code is ErrorCode.HTTP_ERROR
    assert failure.message == (
        f"steps[0].goto: the page answered HTTP 404 ({site.url('/status/404')})"
        " and failOnHttpError is set"
    )


async def test_script_result_that_holds_itself_says_so(
    runner: BrowserSpecRunner, site: Site
) -> None:
    # It was reported as holding NaN or Infinity, which it does not.
    failure = await failure_of(
        runner,
        spec(
            site.url("/page"),
            script=tasks_pb2.ScriptOptions(source="() => { const a = {}; a.self = a; return a }"),
        ),
    )
    assert failure.code is ErrorCode.SCRIPT_FAILED
    assert failure.message.startswith("script: the result is not JSON: it refers to itself")


async def test_jpeg_of_a_page_taller_than_a_jpeg_holds_fails_naming_why(
    runner: BrowserSpecRunner, site: Site
) -> None:
    # Chromium answers it with no bytes: the task succeeded with an empty image/jpeg.
    failure = await failure_of(
        runner,
        spec(
            site.url("/very-tall"),
            viewport=tasks_pb2.Viewport(width=200, height=300),
            screenshot=tasks_pb2.ScreenshotOptions(
                full_page=True, format=tasks_pb2.IMAGE_FORMAT_JPEG
            ),
        ),
    )
    assert failure.code is ErrorCode.RESULT_TOO_LARGE
    assert failure.message.startswith(
        "screenshot: the capture is more than 65535 pixels tall or wide"
    )
    assert not failure.retryable
