"""Checks a spec's action (screenshot, pdf, content, extract, script, audit, snapshot).

Each error names the field as sent in JSON; defaults the farm fills in come from
`farm_core.task_defaults`.
"""

from collections.abc import Mapping

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from farm_core.extract_rules import ExtractField
from farm_core.saved import DEFAULT_COMPARE_THRESHOLD, check_saved_name
from farm_core.task_defaults import (
    ACTIONS,
    DEFAULT_AUDIT_KINDS,
    DEFAULT_JPEG_QUALITY,
    DEFAULT_PAPER_FORMAT,
    DEFAULT_PERFORMANCE_BUDGET,
)
from farm_core.task_limits import MAX_COMPARE_MASKS as MAX_COMPARE_MASKS
from farm_core.task_limits import MAX_JPEG_QUALITY as MAX_JPEG_QUALITY
from farm_core.task_limits import MIN_JPEG_QUALITY as MIN_JPEG_QUALITY
from farm_core.task_limits import PAPER_FORMATS
from farm_scheduler.capture_checks import check_pdf_options, check_screenshot_options
from farm_scheduler.field_checks import (
    check_enum,
    check_length,
    check_script,
    check_selector,
)

MAX_EXTRACT_FIELDS = 100
MAX_EXTRACT_NAME_CHARS = 256
MAX_AUDIT_BUDGET_MS = 300000
MAX_AUDIT_BUDGET_CLS = 10

# A performance budget's millisecond fields by their proto name, with their JSON name.
_BUDGET_MS_FIELDS: Mapping[str, str] = {
    "ttfb_ms": "ttfbMs",
    "fcp_ms": "fcpMs",
    "lcp_ms": "lcpMs",
    "load_ms": "loadMs",
}


def check_one_action(spec: tasks_pb2.TaskSpec) -> None:
    """Raises InvalidArgument unless the spec sets exactly one action; then checks it."""
    chosen = [action for action in ACTIONS if spec.HasField(action)]
    if len(chosen) != 1:
        got = ", ".join(chosen) if chosen else "none"
        raise InvalidArgument(
            "spec", f"exactly one action of {', '.join(ACTIONS)} must be set, got {got}"
        )
    check_action(spec)


def check_action(spec: tasks_pb2.TaskSpec) -> None:
    """Checks the options of the spec's action (if it has one) and fills in their defaults."""
    if spec.HasField("screenshot"):
        _check_screenshot(spec.screenshot)
    elif spec.HasField("pdf"):
        _check_pdf(spec.pdf)
    elif spec.HasField("content"):
        check_enum("content.format", spec.content.format, tasks_pb2.ContentFormat)
        if spec.content.format == tasks_pb2.CONTENT_FORMAT_UNSPECIFIED:
            spec.content.format = tasks_pb2.CONTENT_FORMAT_HTML
    elif spec.HasField("extract"):
        _check_extract(spec.extract)
    elif spec.HasField("script"):
        check_script("script.source", spec.script.source, required=True)
    elif spec.HasField("audit"):
        _check_audit(spec.audit)


def _check_screenshot(screenshot: tasks_pb2.ScreenshotOptions) -> None:
    check_enum("screenshot.format", screenshot.format, tasks_pb2.ImageFormat)
    check_selector("screenshot.selector", screenshot.selector)
    if screenshot.format == tasks_pb2.IMAGE_FORMAT_UNSPECIFIED:
        screenshot.format = tasks_pb2.IMAGE_FORMAT_PNG
    check_screenshot_options(screenshot)
    if screenshot.HasField("compare"):
        _check_compare(screenshot)
    if screenshot.format != tasks_pb2.IMAGE_FORMAT_JPEG:
        if screenshot.quality != 0:
            raise InvalidArgument("screenshot.quality", "is only allowed with IMAGE_FORMAT_JPEG")
        return
    if screenshot.quality == 0:
        screenshot.quality = DEFAULT_JPEG_QUALITY
    elif not MIN_JPEG_QUALITY <= screenshot.quality <= MAX_JPEG_QUALITY:
        raise InvalidArgument(
            "screenshot.quality",
            f"must be between {MIN_JPEG_QUALITY} and {MAX_JPEG_QUALITY}, got {screenshot.quality}",
        )


def _check_compare(screenshot: tasks_pb2.ScreenshotOptions) -> None:
    """Checks a screenshot's comparison with its baseline (PNG only) and fills in its threshold."""
    compare = screenshot.compare
    check_saved_name("screenshot.compare.baseline", compare.baseline)
    if screenshot.format != tasks_pb2.IMAGE_FORMAT_PNG:
        raise InvalidArgument("screenshot.compare", "compares PNG screenshots only")
    if not 0 <= compare.threshold <= 1:
        raise InvalidArgument(
            "screenshot.compare.threshold", f"must be between 0 and 1, got {compare.threshold}"
        )
    compare.threshold = compare.threshold or DEFAULT_COMPARE_THRESHOLD
    if len(compare.mask) > MAX_COMPARE_MASKS:
        raise InvalidArgument(
            "screenshot.compare.mask",
            f"must be at most {MAX_COMPARE_MASKS} selectors, got {len(compare.mask)}",
        )
    for index, selector in enumerate(compare.mask):
        check_selector(f"screenshot.compare.mask[{index}]", selector, required=True)


def _check_pdf(pdf: tasks_pb2.PdfOptions) -> None:
    check_pdf_options(pdf)
    if not pdf.paper_format:
        pdf.paper_format = DEFAULT_PAPER_FORMAT
        return
    canonical = PAPER_FORMATS.get(pdf.paper_format.lower())
    if canonical is None:
        raise InvalidArgument(
            "pdf.paperFormat",
            f"must be one of {', '.join(PAPER_FORMATS.values())}, got {pdf.paper_format!r}",
        )
    pdf.paper_format = canonical


def _check_extract(extract: tasks_pb2.ExtractOptions) -> None:
    count = len(extract.fields)
    if not 1 <= count <= MAX_EXTRACT_FIELDS:
        raise InvalidArgument(
            "extract.fields", f"must hold 1 to {MAX_EXTRACT_FIELDS} fields, got {count}"
        )
    for name, selector in extract.fields.items():
        if not name:
            raise InvalidArgument("extract.fields", "a field name is empty")
        check_length("extract.fields", name, MAX_EXTRACT_NAME_CHARS)
        check_selector(f"extract.fields.{name}", selector, required=True)
        # "[]", "@href" or " @href" leave the agent no selector to look for.
        if not ExtractField.parse(selector).selector.strip():
            raise InvalidArgument(f"extract.fields.{name}", f"has no selector, got {selector!r}")


def _check_audit(audit: tasks_pb2.AuditOptions) -> None:
    """Kinds known and each named once (none: all four); a budget only for performance."""
    for index, kind in enumerate(audit.kinds):
        if kind == tasks_pb2.AUDIT_KIND_UNSPECIFIED or kind not in tasks_pb2.AuditKind.values():
            raise InvalidArgument(
                f"audit.kinds[{index}]",
                f"must be one of {', '.join(map(tasks_pb2.AuditKind.Name, DEFAULT_AUDIT_KINDS))}, "
                f"got {kind}",
            )
        if kind in audit.kinds[:index]:
            raise InvalidArgument(
                f"audit.kinds[{index}]", f"{tasks_pb2.AuditKind.Name(kind)} is named twice"
            )
    if not audit.kinds:
        audit.kinds.extend(DEFAULT_AUDIT_KINDS)
    if tasks_pb2.AUDIT_KIND_PERFORMANCE not in audit.kinds:
        if audit.HasField("budget"):
            raise InvalidArgument("audit.budget", "is only allowed with AUDIT_KIND_PERFORMANCE")
        return
    _check_budget(audit.budget)


def _check_budget(budget: tasks_pb2.PerformanceBudget) -> None:
    """Each budget field 0 (then its default is filled in) or within its bounds."""
    for proto_name, json_name in _BUDGET_MS_FIELDS.items():
        value = getattr(budget, proto_name)
        if value == 0:
            setattr(budget, proto_name, getattr(DEFAULT_PERFORMANCE_BUDGET, proto_name))
        elif not 1 <= value <= MAX_AUDIT_BUDGET_MS:
            raise InvalidArgument(
                f"audit.budget.{json_name}",
                f"must be 0 or between 1 and {MAX_AUDIT_BUDGET_MS}, got {value}",
            )
    if budget.cls == 0:
        budget.cls = DEFAULT_PERFORMANCE_BUDGET.cls
    elif not 0 < budget.cls <= MAX_AUDIT_BUDGET_CLS:
        raise InvalidArgument(
            "audit.budget.cls",
            f"must be 0 or above 0 and at most {MAX_AUDIT_BUDGET_CLS}, got {budget.cls}",
        )
