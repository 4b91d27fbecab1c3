"""The page's session history, for the `back` and `forward` steps.

Read through CDP (`Page.getNavigationHistory`) rather than the page's
`navigation.canGoBack`, which sees only the current origin's entries. The blank
page a new page starts on (and a warm page's reset leaves) is not an entry one
goes back to: a step that would reach it fails instead, so that going back never
lands on an empty page and a step with nowhere to go is an error, not a wait.
"""

from typing import Any

from playwright.async_api import Page

from farm.tasks.v1 import tasks_pb2
from farm_agent.errors import Stage, TaskFailure, failures_as
from farm_core.task_errors import ErrorCode


def history_field(step: tasks_pb2.Step, field: str) -> str:
    """The step's own field: "steps[2].back" or "steps[2].forward"."""
    return f"{field}.back" if step.back else f"{field}.forward"


async def history_target(page: Page, step: tasks_pb2.Step, field: str) -> str:
    """The URL a back or forward step goes to; NAVIGATION_FAILED naming `field` if none."""
    with failures_as(Stage.NAVIGATION, field):
        cdp = await page.context.new_cdp_session(page)
        try:
            history: dict[str, Any] = await cdp.send("Page.getNavigationHistory")
        finally:
            await cdp.detach()
    entries: list[dict[str, Any]] = history["entries"]
    index = int(history["currentIndex"]) + (-1 if step.back else 1)
    starts_blank = bool(entries) and entries[0].get("url") == "about:blank"
    first = 1 if starts_blank else 0
    if not first <= index < len(entries):
        which = "earlier" if step.back else "later"
        raise TaskFailure(
            ErrorCode.NAVIGATION_FAILED, f"{field}: the page has no {which} entry", retryable=False
        )
    return str(entries[index].get("url", ""))
