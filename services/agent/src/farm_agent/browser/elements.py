"""Acting on the element a selector finds, with a failure that names the field and says why.

A step's selector and `screenshot.selector` alike: nothing matching is `no element
matches "#x"`; an element that is there but never became ready says what kept it
(`"#x" matches, but it is not visible`), so a hidden element is not reported missing.
"""

import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from farm_agent.errors import Stage, TaskFailure, failures_as
from farm_core.task_errors import ErrorCode

T = TypeVar("T")

ElementAction = Callable[[Locator], Awaitable[T]]
"""What is done to the element a selector found."""


async def on_element(
    page: Page,
    selector: str,
    field: str,
    action: ElementAction[T],
    *,
    when_ready_but_failed: str = "it did not become ready in time",
) -> T:
    """Does `action` to the first match of `selector`, returning what it returns.

    A failure says why, naming both.
    """
    element = page.locator(selector).first
    try:
        with failures_as(Stage.SELECTOR, field, selector=selector):
            return await action(element)
    except TaskFailure as failure:
        if failure.code is not ErrorCode.SELECTOR_NOT_FOUND or not isinstance(
            failure.__cause__, PlaywrightTimeoutError
        ):
            raise
        reason = await _why_not_ready(element, when_ready_but_failed)
        if reason is None:
            raise
        raise TaskFailure(
            ErrorCode.SELECTOR_NOT_FOUND, f'{field}: "{selector}" matches, but {reason}'
        ) from failure


async def _why_not_ready(element: Locator, otherwise: str) -> str | None:
    """Why an action timed out on an element that is there; None when there is none (or no page)."""
    with contextlib.suppress(PlaywrightError):
        if await element.count() == 0:
            return None
        if not await element.is_visible():
            return "it is not visible"
        if not await element.is_enabled():
            return "it is not enabled"
        return otherwise
    return None
