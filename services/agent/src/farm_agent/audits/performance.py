"""The performance audit: the page's own timings and Web Vitals against a budget.

Each metric scores 1 within its budget, falling in a straight line to 0 at twice
the budget; the audit's score is the metrics' weighted mean (weights below, after
Lighthouse's: the vitals users feel weigh most). A metric the page never reached
(no contentful paint) is left out; a load event still to come counts once the page
has been open longer than the load budget.
"""

from dataclasses import dataclass

from playwright.async_api import Page

from farm.tasks.v1 import tasks_pb2
from farm_agent.audits.report import Check, Impact, audit_result, failed, passed
from farm_agent.audits.vitals import PageVitals, measure_vitals
from farm_core.task_defaults import DEFAULT_PERFORMANCE_BUDGET, PageBudget


@dataclass(frozen=True)
class Metric:
    """One budgeted metric: its check id, name, weight and advice for a page over budget."""

    id: str
    name: str
    weight: int
    advice: str


METRICS: tuple[Metric, ...] = (
    Metric(
        "ttfb",
        "Time to first byte",
        15,
        "make the server answer sooner: cache the page, speed up its back end, serve it "
        "from a CDN near the users",
    ),
    Metric(
        "fcp",
        "First contentful paint",
        15,
        "show content sooner: cut render-blocking CSS and scripts (defer, async), inline "
        "the critical CSS, preload the fonts",
    ),
    Metric(
        "lcp",
        "Largest contentful paint",
        30,
        "paint the largest element sooner: preload its image, size and compress it, and "
        "render it without waiting for scripts",
    ),
    Metric(
        "cls",
        "Cumulative layout shift",
        25,
        "keep the layout still: give images, embeds and ads their size, and reserve room "
        "for content that comes late",
    ),
    Metric(
        "load",
        "Load event",
        15,
        "load less: defer what the page does not need at first, compress images and split "
        "large scripts",
    ),
)


def budget_of(given: tasks_pb2.PerformanceBudget) -> PageBudget:
    """The budget to audit against: each field given, or its default when 0."""
    return PageBudget(
        ttfb_ms=given.ttfb_ms or DEFAULT_PERFORMANCE_BUDGET.ttfb_ms,
        fcp_ms=given.fcp_ms or DEFAULT_PERFORMANCE_BUDGET.fcp_ms,
        lcp_ms=given.lcp_ms or DEFAULT_PERFORMANCE_BUDGET.lcp_ms,
        cls=given.cls or DEFAULT_PERFORMANCE_BUDGET.cls,
        load_ms=given.load_ms or DEFAULT_PERFORMANCE_BUDGET.load_ms,
    )


async def audit_performance(
    page: Page, given: tasks_pb2.PerformanceBudget
) -> tasks_pb2.AuditResult:
    """The page's timings and vitals against the budget."""
    return performance_result(await measure_vitals(page), budget_of(given))


def performance_result(vitals: PageVitals, budget: PageBudget) -> tasks_pb2.AuditResult:
    """The performance AuditResult of measured `vitals` against `budget`."""
    timing = vitals.timing
    load_ms = timing.load_ms
    if load_ms == 0 and vitals.elapsed_ms > budget.load_ms:
        load_ms = vitals.elapsed_ms
    measured: dict[str, tuple[float, float] | None] = {
        "ttfb": (timing.ttfb_ms, budget.ttfb_ms),
        "fcp": (timing.fcp_ms, budget.fcp_ms) if timing.fcp_ms else None,
        "lcp": (timing.lcp_ms, budget.lcp_ms) if timing.lcp_ms else None,
        "cls": (timing.cls, budget.cls),
        "load": (load_ms, budget.load_ms) if load_ms else None,
    }
    targets = {"lcp": [vitals.largest_element], "cls": list(vitals.shifted_elements)}
    checks: list[Check] = []
    weighted = 0.0
    weights = 0
    for metric in METRICS:
        pair = measured[metric.id]
        if pair is None:
            continue
        value, limit = pair
        weighted += metric.weight * metric_score(value, limit)
        weights += metric.weight
        checks.append(_check(metric, value, limit, targets.get(metric.id, [])))
    score = round(100 * weighted / weights) if weights else 100
    return audit_result(tasks_pb2.AUDIT_KIND_PERFORMANCE, checks, score)


def metric_score(value: float, limit: float) -> float:
    """1 within the budget, falling in a straight line to 0 at twice the budget."""
    return min(1.0, max(0.0, 2 - value / limit))


def over_budget_impact(value: float, limit: float) -> Impact:
    """How bad a metric over its budget is: up to 1.25x minor, 1.5x moderate, 2x serious."""
    ratio = value / limit
    if ratio <= 1.25:
        return "minor"
    if ratio <= 1.5:
        return "moderate"
    if ratio <= 2:
        return "serious"
    return "critical"


def _check(metric: Metric, value: float, limit: float, targets: list[str]) -> Check:
    if value <= limit:
        return passed(metric.id)
    shown, wanted = (
        (f"{value:.3f}", f"{limit:g}")
        if metric.id == "cls"
        else (
            f"{value:.0f} ms",
            f"{limit:g} ms",
        )
    )
    return failed(
        metric.id,
        over_budget_impact(value, limit),
        f"{metric.name} within the budget of {wanted}",
        f"{metric.name} was {shown}; {metric.advice}.",
        [target for target in targets if target],
    )
