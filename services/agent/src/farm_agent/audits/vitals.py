"""Measures a loaded page's navigation timing and Web Vitals from its own performance entries.

Buffered PerformanceObservers hand over the entries the page has had since it
started, so the measuring works after the fact, whenever the audit runs.
"""

from dataclasses import dataclass
from typing import Any

from playwright.async_api import Page

from farm.tasks.v1 import tasks_pb2
from farm_agent.audits.scripts import page_function


@dataclass(frozen=True)
class PageVitals:
    """The page's timing, how long it has been open, and which elements the vitals are about."""

    timing: tasks_pb2.PageTiming
    elapsed_ms: float
    largest_element: str
    shifted_elements: tuple[str, ...]


async def measure_vitals(page: Page) -> PageVitals:
    """The page's TTFB, FCP, LCP, CLS, DOMContentLoaded and load (0 for what has not happened)."""
    measured: dict[str, Any] = await page.evaluate(page_function("vitals"))
    return PageVitals(
        timing=tasks_pb2.PageTiming(
            ttfb_ms=measured["ttfbMs"],
            fcp_ms=measured["fcpMs"],
            lcp_ms=measured["lcpMs"],
            cls=measured["cls"],
            dom_content_loaded_ms=measured["domContentLoadedMs"],
            load_ms=measured["loadMs"],
        ),
        elapsed_ms=measured["elapsedMs"],
        largest_element=measured["largestElement"],
        shifted_elements=tuple(measured["shiftedElements"]),
    )
