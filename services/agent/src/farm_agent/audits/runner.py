"""Runs the audits an audit action asks for, in the order asked, on the loaded page."""

from collections.abc import Callable

from playwright.async_api import Page

from farm.tasks.v1 import tasks_pb2
from farm_agent.audits.accessibility import audit_accessibility
from farm_agent.audits.best_practices import audit_best_practices
from farm_agent.audits.observer import DocumentResponse, Observations, document_response
from farm_agent.audits.performance import audit_performance
from farm_agent.audits.seo import audit_seo
from farm_agent.errors import Stage, TaskFailure, failures_as
from farm_core.task_defaults import DEFAULT_AUDIT_KINDS
from farm_core.task_errors import ErrorCode


class _Document:
    """The main document's response, read once for the audits that need it."""

    def __init__(self, page: Page, seen: Observations, time_left_ms: Callable[[], float]) -> None:
        self._page = page
        self._seen = seen
        self._time_left_ms = time_left_ms
        self._response: DocumentResponse | None = None

    async def get(self) -> DocumentResponse:
        if self._response is None:
            self._response = await document_response(self._page, self._seen, self._time_left_ms())
        return self._response


async def run_audits(
    page: Page,
    options: tasks_pb2.AuditOptions,
    seen: Observations | None,
    time_left_ms: Callable[[], float],
) -> tasks_pb2.AuditReport:
    """One result per asked kind (all four when none is asked); `seen`: the page's loading."""
    seen = seen or Observations()
    document = _Document(page, seen, time_left_ms)
    report = tasks_pb2.AuditReport()
    for kind in options.kinds or DEFAULT_AUDIT_KINDS:
        with failures_as(Stage.CAPTURE, "audit"):
            if kind == tasks_pb2.AUDIT_KIND_ACCESSIBILITY:
                result = await audit_accessibility(page)
            elif kind == tasks_pb2.AUDIT_KIND_PERFORMANCE:
                result = await audit_performance(page, options.budget)
            elif kind == tasks_pb2.AUDIT_KIND_SEO:
                result = await audit_seo(page, await document.get())
            elif kind == tasks_pb2.AUDIT_KIND_BEST_PRACTICES:
                result = await audit_best_practices(page, await document.get(), seen)
            else:
                raise TaskFailure(ErrorCode.INTERNAL, f"audit.kinds: no audit of kind {kind}")
        report.results.append(result)
    return report
