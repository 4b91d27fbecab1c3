"""A TaskSpec's defaults and action names: what the scheduler fills in and the agent assumes.

The scheduler stores every spec with its defaults filled in, so an agent's own
fallbacks only matter for a spec that did not come through it; both read them here,
so the two can never disagree. docs/api.md states them (a test checks).
"""

from typing import Literal, NamedTuple

from farm.tasks.v1 import tasks_pb2


class Viewport(NamedTuple):
    """A browser window's size in CSS pixels."""

    width: int
    height: int


class PageBudget(NamedTuple):
    """A performance audit's budget: milliseconds, and layout shift without a unit."""

    ttfb_ms: int
    fcp_ms: int
    lcp_ms: int
    cls: float
    load_ms: int


DEFAULT_VIEWPORT = Viewport(width=1280, height=800)
"""The window of a task that names neither a viewport nor a device."""
DEFAULT_TIMEOUT_MS = 30_000
"""One attempt's time limit when timeoutMs is 0 (FARM_SCHEDULER_DEFAULT_TIMEOUT_MS's default)."""
DEFAULT_MAX_ATTEMPTS = 3
"""Attempts of a task whose maxAttempts is 0 (the scheduler caps it further)."""
DEFAULT_JPEG_QUALITY = 80
"""The quality of a JPEG screenshot that gives none."""
DEFAULT_PAPER_FORMAT = "A4"
"""The paper of a PDF that names none."""
DEFAULT_WAIT_UNTIL: "tasks_pb2.WaitUntil.ValueType" = tasks_pb2.WAIT_UNTIL_LOAD
"""When a navigation counts as done if waitUntil is unspecified."""
DEFAULT_PRIORITY: "tasks_pb2.Priority.ValueType" = tasks_pb2.PRIORITY_NORMAL
"""The priority of a task that gives none."""
DEFAULT_VIDEO_FORMAT: "tasks_pb2.VideoFormat.ValueType" = tasks_pb2.VIDEO_FORMAT_WEBM
"""The format of a screencast that names none."""
DEFAULT_AUDIT_KINDS: tuple["tasks_pb2.AuditKind.ValueType", ...] = (
    tasks_pb2.AUDIT_KIND_ACCESSIBILITY,
    tasks_pb2.AUDIT_KIND_PERFORMANCE,
    tasks_pb2.AUDIT_KIND_SEO,
    tasks_pb2.AUDIT_KIND_BEST_PRACTICES,
)
"""The audits of an audit action that names none: all four, in this order."""
DEFAULT_PERFORMANCE_BUDGET = PageBudget(
    ttfb_ms=800, fcp_ms=1800, lcp_ms=2500, cls=0.1, load_ms=3000
)
"""The performance audit's budget for each field given as 0."""

ActionName = Literal["screenshot", "pdf", "content", "extract", "script", "audit", "snapshot"]
ACTIONS: tuple[ActionName, ...] = (
    "screenshot",
    "pdf",
    "content",
    "extract",
    "script",
    "audit",
    "snapshot",
)
"""A spec's actions, as fields of TaskSpec and SessionCommand: a task has exactly one, a
session command at most one."""
