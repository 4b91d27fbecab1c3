"""A selector that does not parse fails at once, finally, naming its field and itself."""

from collections.abc import Callable

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.errors import TaskFailure
from farm_agent.settings import AgentSettings
from farm_core.task_errors import ErrorCode
from tests.pages import Site

pytestmark = pytest.mark.integration

# Long enough that a wait for the element would end in a timeout's message, not a parse error's.
TIMEOUT_MS = 20_000


@pytest.fixture
def runner(
    shared_pool: BrowserPool, make_settings: Callable[..., AgentSettings]
) -> BrowserSpecRunner:
    return BrowserSpecRunner(shared_pool, make_settings())


async def failure_of(runner: BrowserSpecRunner, task: tasks_pb2.TaskSpec) -> TaskFailure:
    with pytest.raises(TaskFailure) as caught:
        await runner.run(task)
    return caught.value


def with_steps(*steps: tasks_pb2.Step) -> dict[str, object]:
    return {"steps": steps, "screenshot": tasks_pb2.ScreenshotOptions()}


@pytest.mark.parametrize(
    ("fields", "field", "selector"),
    [
        (with_steps(tasks_pb2.Step(click="div[")), "steps[0].click", "div["),
        (with_steps(tasks_pb2.Step(wait_for="h1 >>> [")), "steps[0].waitFor", "h1 >>> ["),
        (with_steps(tasks_pb2.Step(hover="xpath=//[")), "steps[0].hover", "xpath=//["),
        (
            {"extract": tasks_pb2.ExtractOptions(fields={"title": "##x@href"})},
            "extract.fields.title",
            "##x",
        ),
        (
            {"screenshot": tasks_pb2.ScreenshotOptions(selector="xpath=//*[")},
            "screenshot.selector",
            "xpath=//*[",
        ),
    ],
)
async def test_an_unparsable_selector_is_a_final_failure_naming_field_and_selector(
    runner: BrowserSpecRunner,
    site: Site,
    fields: dict[str, object],
    field: str,
    selector: str,
) -> None:
    task = tasks_pb2.TaskSpec(url=site.url("/page"), timeout_ms=TIMEOUT_MS, **fields)  # type: ignore[arg-type]
    failure = await failure_of(runner, task)
    assert failure.code is ErrorCode.SELECTOR_NOT_FOUND
    assert not failure.retryable
    assert failure.message.startswith(f'{field}: invalid selector "{selector}": ')
    assert "Timeout" not in failure.message


async def test_a_valid_xpath_that_matches_nothing_is_still_selector_not_found(
    runner: BrowserSpecRunner, site: Site
) -> None:
    task = tasks_pb2.TaskSpec(
        url=site.url("/page"),
        timeout_ms=2000,
        screenshot=tasks_pb2.ScreenshotOptions(selector="xpath=//no-such-element"),
    )
    failure = await failure_of(runner, task)
    assert failure.code is ErrorCode.SELECTOR_NOT_FOUND
    assert failure.message.startswith(
        'screenshot.selector: no element matches "xpath=//no-such-element" (Timeout'
    )


async def test_a_reference_to_a_frame_the_page_has_not_is_selector_not_found(
    runner: BrowserSpecRunner, site: Site
) -> None:
    task = tasks_pb2.TaskSpec(
        url=site.url("/page"), timeout_ms=2000, steps=[tasks_pb2.Step(click="aria-ref=f9e1")]
    )
    failure = await failure_of(runner, task)
    assert failure.code is ErrorCode.SELECTOR_NOT_FOUND
    assert failure.message.startswith('steps[0].click: no element matches "aria-ref=f9e1"')
