"""The steps a task or session command runs on its page before the action.

Every step but `goto`, `back` and `forward` runs here; those are navigations, which
the runner does through the egress guard like the task's own URL. A step that acts on an element
fails naming its field and selector: `steps[3].hover: no element matches "#x"`
(SELECTOR_NOT_FOUND), or, when the element is there, what kept the step from it
(hidden, disabled, no such option). A selector may be an accessibility snapshot
reference ("aria-ref=e5"), which Playwright resolves itself.
"""

import asyncio
from collections.abc import Awaitable, Iterable

from playwright.async_api import Locator, Page

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import TimeLeftMs, evaluated
from farm_agent.browser.elements import on_element
from farm_agent.browser.observers import ContextObserver
from farm_agent.errors import Stage, TaskFailure, failures_as
from farm_core.task_errors import ErrorCode

# The document's whole height: the body's alone leaves out what lies outside it (an
# absolutely positioned element, a body of height 100%), and a body-less document has none.
_SCROLL_TO = """(toBottom) => {
  const page = document.scrollingElement ?? document.documentElement;
  window.scrollTo(0, toBottom && page ? page.scrollHeight : 0);
}"""


async def run_step(
    page: Page,
    step: tasks_pb2.Step,
    field: str,
    time_left_ms: TimeLeftMs,
    observer: ContextObserver | None = None,
) -> None:
    """Runs one step (any but goto) on the page; `field` is the step's own, e.g. "steps[3]".

    A wait for network idle reads the page's requests from `observer`, which must
    have watched the page since before the step that started them.
    """
    if step.click:
        await on_element(
            page, step.click, f"{field}.click", lambda it: it.click(timeout=time_left_ms())
        )
    elif step.HasField("fill"):
        value = step.fill.value
        await on_element(
            page,
            step.fill.selector,
            f"{field}.fill.selector",
            lambda it: it.fill(value, timeout=time_left_ms()),
        )
    elif step.wait_for:
        await on_element(
            page,
            step.wait_for,
            f"{field}.waitFor",
            lambda it: it.wait_for(state="visible", timeout=time_left_ms()),
        )
    elif step.press:
        with failures_as(Stage.CAPTURE, f"{field}.press"):
            await page.keyboard.press(step.press)
    elif step.scroll in ("bottom", "top"):
        with failures_as(Stage.CAPTURE, f"{field}.scroll"):
            await page.evaluate(_SCROLL_TO, step.scroll == "bottom")
    elif step.scroll:
        await on_element(
            page,
            step.scroll,
            f"{field}.scroll",
            lambda it: it.scroll_into_view_if_needed(timeout=time_left_ms()),
        )
    else:
        await _run_toolbox_step(page, step, field, time_left_ms, observer)


def waits_for_network_idle(steps: Iterable[tasks_pb2.Step]) -> bool:
    """Whether one of `steps` waits for the network to be idle (it needs an observer)."""
    return any(step.HasField("wait") and step.wait.network_idle for step in steps)


async def _run_toolbox_step(
    page: Page,
    step: tasks_pb2.Step,
    field: str,
    time_left_ms: TimeLeftMs,
    observer: ContextObserver | None,
) -> None:
    """hover, select, check, uncheck, wait and evaluate."""
    if step.hover:
        await on_element(
            page, step.hover, f"{field}.hover", lambda it: it.hover(timeout=time_left_ms())
        )
    elif step.HasField("select"):
        await _select(page, step.select, f"{field}.select", time_left_ms)
    elif step.check:
        await on_element(
            page, step.check, f"{field}.check", lambda it: it.check(timeout=time_left_ms())
        )
    elif step.uncheck:
        await on_element(
            page, step.uncheck, f"{field}.uncheck", lambda it: it.uncheck(timeout=time_left_ms())
        )
    elif step.HasField("wait"):
        await _wait(page, step.wait, f"{field}.wait", time_left_ms, observer)
    elif step.evaluate:
        await evaluated(page, step.evaluate, f"{field}.evaluate", time_left_ms)
    else:
        raise TaskFailure(ErrorCode.INTERNAL, f"{field}: the step sets no action")


async def _select(
    page: Page, select: tasks_pb2.SelectStep, field: str, time_left_ms: TimeLeftMs
) -> None:
    """Chooses the option by its value, else by its visible label."""

    def choose(it: Locator) -> Awaitable[list[str]]:
        if select.value:
            return it.select_option(value=select.value, timeout=time_left_ms())
        return it.select_option(label=select.label, timeout=time_left_ms())

    missing = (
        f'it has no option with value "{select.value}"'
        if select.value
        else f'it has no option labelled "{select.label}"'
    )
    await on_element(
        page, select.selector, f"{field}.selector", choose, when_ready_but_failed=missing
    )


async def _wait(
    page: Page,
    wait: tasks_pb2.WaitStep,
    field: str,
    time_left_ms: TimeLeftMs,
    observer: ContextObserver | None,
) -> None:
    """Until text is visible, the network is idle, or for a time (if the attempt has it left)."""
    if wait.text:
        try:
            with failures_as(Stage.SELECTOR, f"{field}.text"):
                await page.get_by_text(wait.text).first.wait_for(
                    state="visible", timeout=time_left_ms()
                )
        except TaskFailure as failure:
            if failure.code is not ErrorCode.SELECTOR_NOT_FOUND:
                raise
            raise TaskFailure(
                ErrorCode.SELECTOR_NOT_FOUND,
                f'{field}.text: the text "{wait.text}" did not become visible in time',
            ) from failure
    elif wait.network_idle:
        await _network_idle(page, f"{field}.networkIdle", time_left_ms, observer)
    elif wait.ms > time_left_ms():
        # The attempt would time out while waiting, with nothing left for the action.
        raise TaskFailure(
            ErrorCode.TIMEOUT,
            f"{field}.ms: {wait.ms} ms is more than the attempt has left ({time_left_ms():.0f} ms)",
        )
    else:
        await asyncio.sleep(wait.ms / 1000)


async def _network_idle(
    page: Page, field: str, time_left_ms: TimeLeftMs, observer: ContextObserver | None
) -> None:
    """Until the page has had no request open for a while; names what stayed open."""
    if observer is None:
        raise TaskFailure(ErrorCode.INTERNAL, f"{field}: the page's requests were not observed")
    try:
        async with asyncio.timeout(time_left_ms() / 1000):
            await observer.network_idle(page)
    except TimeoutError as error:
        still_open = observer.open_requests(page)
        shown = ", ".join(entry.url for entry in still_open[:3])
        more = f" and {len(still_open) - 3} more" if len(still_open) > 3 else ""
        raise TaskFailure(
            ErrorCode.TIMEOUT,
            f"{field}: the network did not become idle in time; "
            f"{len(still_open)} request(s) still open: {shown}{more}",
        ) from error
