"""Checks a TaskSpec and fills in its defaults; each error names the field as sent in JSON.

The MAX_/MIN_ constants below are every size limit a TaskSpec has, all in this one
place; docs/api.md lists them (a test checks the two agree). The defaults are the
farm's, shared with the agents (`farm_core.task_defaults`).
"""

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.db import utcnow
from farm_core.errors import InvalidArgument
from farm_core.saved import DEFAULT_COMPARE_THRESHOLD, check_saved_name
from farm_core.task_defaults import (
    ACTIONS,
    DEFAULT_AUDIT_KINDS,
    DEFAULT_JPEG_QUALITY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PAPER_FORMAT,
    DEFAULT_PERFORMANCE_BUDGET,
    DEFAULT_PRIORITY,
    DEFAULT_VIDEO_FORMAT,
    DEFAULT_VIEWPORT,
    DEFAULT_WAIT_UNTIL,
)
from farm_core.timestamps import from_timestamp
from farm_scheduler.page_setup import check_page_setup

MAX_URL_CHARS = 2048
MAX_SELECTOR_CHARS = 1000
MAX_DEVICE_CHARS = 100
MAX_KEY_NAME_CHARS = 100
MAX_FILL_VALUE_CHARS = 10000
MAX_OPTION_CHARS = 1000
MAX_WAIT_TEXT_CHARS = 1000
MAX_SCRIPT_CHARS = 100000
MAX_STEPS = 50
MAX_EXTRACT_FIELDS = 100
MAX_EXTRACT_NAME_CHARS = 256
MAX_LABELS = 32
MAX_LABEL_KEY_CHARS = 63
MAX_LABEL_VALUE_CHARS = 256
MAX_REGION_CHARS = 32
MAX_IDEMPOTENCY_KEY_CHARS = 128
MAX_VIEWPORT_PIXELS = 10000
MIN_TIMEOUT_MS = 1000
MAX_TIMEOUT_MS = 300000
MAX_DEADLINE_AHEAD = dt.timedelta(hours=24)
MAX_AUDIT_BUDGET_MS = 300000
MAX_AUDIT_BUDGET_CLS = 10
MAX_COMPARE_MASKS = 50

PAPER_FORMATS: Mapping[str, str] = {
    name.lower(): name
    for name in ("Letter", "Legal", "Tabloid", "Ledger", "A0", "A1", "A2", "A3", "A4", "A5", "A6")
}
"""Known paper formats by their lower-case name, mapped to their canonical spelling."""

REGION_PATTERN = re.compile(rf"^[a-z0-9][a-z0-9-]{{0,{MAX_REGION_CHARS - 1}}}$")
LABEL_KEY_PATTERN = re.compile(rf"^[a-z0-9][a-z0-9_.-]{{0,{MAX_LABEL_KEY_CHARS - 1}}}$")

# A performance budget's millisecond fields by their proto name, with their JSON name.
_BUDGET_MS_FIELDS: Mapping[str, str] = {
    "ttfb_ms": "ttfbMs",
    "fcp_ms": "fcpMs",
    "lcp_ms": "lcpMs",
    "load_ms": "loadMs",
}

# A step's fields by their proto name, with the lowerCamelCase name users send.
_STEP_FIELDS: Mapping[str, str] = {
    "click": "click",
    "fill": "fill",
    "wait_for": "waitFor",
    "press": "press",
    "scroll": "scroll",
    "hover": "hover",
    "select": "select",
    "check": "check",
    "uncheck": "uncheck",
    "goto": "goto",
    "wait": "wait",
    "evaluate": "evaluate",
}
# The steps whose value is a selector (or, for scroll, "top" or "bottom").
_SELECTOR_STEPS: Mapping[str, str] = {
    "click": "click",
    "wait_for": "waitFor",
    "scroll": "scroll",
    "hover": "hover",
    "check": "check",
    "uncheck": "uncheck",
}


def validate_spec(
    spec: tasks_pb2.TaskSpec,
    *,
    max_attempts_cap: int,
    default_timeout_ms: int,
    now: dt.datetime | None = None,
) -> tasks_pb2.TaskSpec:
    """A copy of `spec` with its defaults filled in; InvalidArgument names the first bad field.

    `now` (default: the current time) is what the deadline must come after.
    """
    checked = tasks_pb2.TaskSpec()
    checked.CopyFrom(spec)
    check_url(checked.url)
    _check_action(checked)
    check_steps(checked.steps)
    _check_page(checked)
    _check_limits(checked, max_attempts_cap=max_attempts_cap, default_timeout_ms=default_timeout_ms)
    check_waits(checked.steps, checked.timeout_ms)
    _check_deadline(checked, utcnow() if now is None else now)
    _check_routing(checked)
    check_labels(checked.labels)
    check_length("idempotencyKey", checked.idempotency_key, MAX_IDEMPOTENCY_KEY_CHARS)
    if checked.HasField("screencast"):
        checked.screencast.format = check_video_format(
            "screencast.format", checked.screencast.format
        )
    if checked.HasField("setup"):
        check_page_setup(checked.setup)
    _check_profile(checked)
    return checked


def runs_script(spec: tasks_pb2.TaskSpec | sessions_pb2.SessionCommand) -> bool:
    """Whether the spec runs the caller's JavaScript (a script action or an evaluate step).

    Such a task or command needs the `script` scope.
    """
    return spec.HasField("script") or any(step.evaluate for step in spec.steps)


def check_label_key(field: str, key: str) -> None:
    """Raises InvalidArgument(field) unless `key` is a valid label key."""
    if not LABEL_KEY_PATTERN.fullmatch(key):
        raise InvalidArgument(
            field,
            f"label key {key!r} must be 1 to {MAX_LABEL_KEY_CHARS} characters of a-z, 0-9, "
            "'_', '.', '-', "
            "starting with a letter or digit",
        )


def check_length(field: str, value: str, most: int) -> None:
    """Raises InvalidArgument(field) when `value` is longer than `most` characters."""
    if len(value) > most:
        raise InvalidArgument(field, f"must be at most {most} characters, got {len(value)}")


def _check_required(field: str, value: str, most: int) -> None:
    if not value:
        raise InvalidArgument(field, "is required")
    check_length(field, value, most)


def _check_enum(field: str, value: int, known: Iterable[int]) -> None:
    if value not in set(known):
        raise InvalidArgument(field, f"has no value {value}")


def check_url(url: str, field: str = "url") -> None:
    """Raises InvalidArgument(field) unless `url` is an http or https URL with a host."""
    if not url:
        raise InvalidArgument(field, "is required")
    check_length(field, url, MAX_URL_CHARS)
    if any(char.isspace() or ord(char) < 32 for char in url):
        raise InvalidArgument(field, "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        # .port raises ValueError for a port that is not a number from 0 to 65535.
        _ = parts.port
    except ValueError as error:
        raise InvalidArgument(field, f"is not a valid URL: {error}") from error
    if parts.scheme not in ("http", "https"):
        raise InvalidArgument(field, f"must be http or https, got {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise InvalidArgument(field, "has no host")


def _check_action(spec: tasks_pb2.TaskSpec) -> None:
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
        _check_enum("content.format", spec.content.format, tasks_pb2.ContentFormat.values())
        if spec.content.format == tasks_pb2.CONTENT_FORMAT_UNSPECIFIED:
            spec.content.format = tasks_pb2.CONTENT_FORMAT_HTML
    elif spec.HasField("extract"):
        _check_extract(spec.extract)
    elif spec.HasField("script"):
        _check_required("script.source", spec.script.source, MAX_SCRIPT_CHARS)
    elif spec.HasField("audit"):
        _check_audit(spec.audit)


def _check_screenshot(screenshot: tasks_pb2.ScreenshotOptions) -> None:
    _check_enum("screenshot.format", screenshot.format, tasks_pb2.ImageFormat.values())
    check_length("screenshot.selector", screenshot.selector, MAX_SELECTOR_CHARS)
    if screenshot.format == tasks_pb2.IMAGE_FORMAT_UNSPECIFIED:
        screenshot.format = tasks_pb2.IMAGE_FORMAT_PNG
    if screenshot.HasField("compare"):
        _check_compare(screenshot)
    if screenshot.format != tasks_pb2.IMAGE_FORMAT_JPEG:
        if screenshot.quality != 0:
            raise InvalidArgument("screenshot.quality", "is only allowed with IMAGE_FORMAT_JPEG")
        return
    if screenshot.quality == 0:
        screenshot.quality = DEFAULT_JPEG_QUALITY
    elif not 1 <= screenshot.quality <= 100:
        raise InvalidArgument(
            "screenshot.quality", f"must be between 1 and 100, got {screenshot.quality}"
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
        _check_required(f"screenshot.compare.mask[{index}]", selector, MAX_SELECTOR_CHARS)


def _check_profile(spec: tasks_pb2.TaskSpec) -> None:
    """Checks the profile a task starts from and saves to."""
    if spec.profile:
        check_saved_name("profile", spec.profile)
    elif spec.save_profile:
        raise InvalidArgument("saveProfile", "needs a profile to save to")


def _check_pdf(pdf: tasks_pb2.PdfOptions) -> None:
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
        _check_required(f"extract.fields.{name}", selector, MAX_SELECTOR_CHARS)


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


def check_steps(steps: Iterable[tasks_pb2.Step]) -> None:
    """Raises InvalidArgument naming the first bad step (`steps[i]...`)."""
    steps = list(steps)
    if len(steps) > MAX_STEPS:
        raise InvalidArgument("steps", f"must be at most {MAX_STEPS} steps, got {len(steps)}")
    for index, step in enumerate(steps):
        _check_step(f"steps[{index}]", step)


def _check_step(path: str, step: tasks_pb2.Step) -> None:
    given = {descriptor.name for descriptor, _ in step.ListFields()}
    chosen = [json_name for proto_name, json_name in _STEP_FIELDS.items() if proto_name in given]
    if len(chosen) != 1:
        got = ", ".join(chosen) if chosen else "none"
        raise InvalidArgument(
            path, f"exactly one of {', '.join(_STEP_FIELDS.values())} must be set, got {got}"
        )
    for proto_name, json_name in _SELECTOR_STEPS.items():
        # A selector may also be an accessibility snapshot reference, "aria-ref=e5".
        check_length(f"{path}.{json_name}", getattr(step, proto_name), MAX_SELECTOR_CHARS)
    check_length(f"{path}.press", step.press, MAX_KEY_NAME_CHARS)
    if step.HasField("fill"):
        _check_required(f"{path}.fill.selector", step.fill.selector, MAX_SELECTOR_CHARS)
        check_length(f"{path}.fill.value", step.fill.value, MAX_FILL_VALUE_CHARS)
    if step.HasField("select"):
        _check_select(f"{path}.select", step.select)
    if step.goto:
        check_url(step.goto, f"{path}.goto")
    if step.HasField("wait"):
        _check_wait(f"{path}.wait", step.wait)
    check_length(f"{path}.evaluate", step.evaluate, MAX_SCRIPT_CHARS)


def check_waits(steps: Iterable[tasks_pb2.Step], timeout_ms: int) -> None:
    """Raises InvalidArgument for a wait step as long as the time limit (nothing would be left)."""
    for index, step in enumerate(steps):
        if step.wait.ms >= timeout_ms:
            raise InvalidArgument(
                f"steps[{index}].wait.ms",
                f"must be less than timeoutMs ({timeout_ms}), got {step.wait.ms}",
            )


def _check_select(path: str, select: tasks_pb2.SelectStep) -> None:
    _check_required(f"{path}.selector", select.selector, MAX_SELECTOR_CHARS)
    if not select.value and not select.label:
        raise InvalidArgument(path, "needs the option's value or its label")
    check_length(f"{path}.value", select.value, MAX_OPTION_CHARS)
    check_length(f"{path}.label", select.label, MAX_OPTION_CHARS)


def _check_wait(path: str, wait: tasks_pb2.WaitStep) -> None:
    given = (("text", bool(wait.text)), ("networkIdle", wait.network_idle), ("ms", wait.ms != 0))
    chosen = [name for name, is_set in given if is_set]
    if len(chosen) != 1:
        got = ", ".join(chosen) if chosen else "none"
        raise InvalidArgument(path, f"exactly one of text, networkIdle, ms must be set, got {got}")
    check_length(f"{path}.text", wait.text, MAX_WAIT_TEXT_CHARS)
    if wait.ms and not 1 <= wait.ms <= MAX_TIMEOUT_MS:
        raise InvalidArgument(
            f"{path}.ms", f"must be between 1 and {MAX_TIMEOUT_MS}, got {wait.ms}"
        )


def _check_page(spec: tasks_pb2.TaskSpec) -> None:
    check_length("device", spec.device, MAX_DEVICE_CHARS)
    if spec.HasField("viewport"):
        check_viewport(spec.viewport)
    elif not spec.device:
        spec.viewport.width, spec.viewport.height = DEFAULT_VIEWPORT
    spec.wait_until = check_wait_until(spec.wait_until)


def check_viewport(viewport: tasks_pb2.Viewport) -> None:
    """Raises InvalidArgument unless both sides are within 1 and MAX_VIEWPORT_PIXELS."""
    for field, size in (("width", viewport.width), ("height", viewport.height)):
        if not 1 <= size <= MAX_VIEWPORT_PIXELS:
            raise InvalidArgument(
                f"viewport.{field}", f"must be between 1 and {MAX_VIEWPORT_PIXELS}, got {size}"
            )


def check_wait_until(
    wait_until: "tasks_pb2.WaitUntil.ValueType",
) -> "tasks_pb2.WaitUntil.ValueType":
    """The waitUntil to use: the given one, or the default for unspecified."""
    _check_enum("waitUntil", wait_until, tasks_pb2.WaitUntil.values())
    if wait_until == tasks_pb2.WAIT_UNTIL_UNSPECIFIED:
        return DEFAULT_WAIT_UNTIL
    return wait_until


def check_video_format(
    field: str, video_format: "tasks_pb2.VideoFormat.ValueType"
) -> "tasks_pb2.VideoFormat.ValueType":
    """The screencast's format to use: the given one, or the default for unspecified."""
    _check_enum(field, video_format, tasks_pb2.VideoFormat.values())
    if video_format == tasks_pb2.VIDEO_FORMAT_UNSPECIFIED:
        return DEFAULT_VIDEO_FORMAT
    return video_format


def check_timeout(timeout_ms: int, default_timeout_ms: int) -> int:
    """The time limit to use: the given timeoutMs within its bounds, or the default for 0."""
    if timeout_ms == 0:
        return default_timeout_ms
    if not MIN_TIMEOUT_MS <= timeout_ms <= MAX_TIMEOUT_MS:
        raise InvalidArgument(
            "timeoutMs",
            f"must be 0 or between {MIN_TIMEOUT_MS} and {MAX_TIMEOUT_MS}, got {timeout_ms}",
        )
    return timeout_ms


def _check_limits(
    spec: tasks_pb2.TaskSpec, *, max_attempts_cap: int, default_timeout_ms: int
) -> None:
    spec.timeout_ms = check_timeout(spec.timeout_ms, default_timeout_ms)
    if spec.max_attempts == 0:
        spec.max_attempts = min(DEFAULT_MAX_ATTEMPTS, max_attempts_cap)
    elif not 1 <= spec.max_attempts <= max_attempts_cap:
        raise InvalidArgument(
            "maxAttempts",
            f"must be 0 or between 1 and {max_attempts_cap}, got {spec.max_attempts}",
        )


def _check_deadline(spec: tasks_pb2.TaskSpec, now: dt.datetime) -> None:
    if not spec.HasField("deadline"):
        return
    try:
        deadline = from_timestamp(spec.deadline)
    except (ValueError, OverflowError) as error:
        raise InvalidArgument("deadline", f"is not a valid time: {error}") from error
    if deadline <= now:
        raise InvalidArgument(
            "deadline", f"must be in the future, got {deadline.isoformat()} (now {now.isoformat()})"
        )
    if deadline > now + MAX_DEADLINE_AHEAD:
        raise InvalidArgument(
            "deadline",
            f"must be at most 24 hours ahead, got {deadline.isoformat()} (now {now.isoformat()})",
        )


def _check_routing(spec: tasks_pb2.TaskSpec) -> None:
    _check_enum("priority", spec.priority, tasks_pb2.Priority.values())
    if spec.priority == tasks_pb2.PRIORITY_UNSPECIFIED:
        spec.priority = DEFAULT_PRIORITY
    check_region(spec.region)


def check_region(region: str) -> None:
    """Raises InvalidArgument unless `region` is empty or a region name."""
    if region and not REGION_PATTERN.fullmatch(region):
        raise InvalidArgument(
            "region",
            f"must be empty or 1 to {MAX_REGION_CHARS} characters of a-z, 0-9 and '-', "
            f"starting with a letter or digit, got {region!r}",
        )


def check_labels(labels: Mapping[str, str]) -> None:
    """Raises InvalidArgument unless the labels are within their count and sizes."""
    if len(labels) > MAX_LABELS:
        raise InvalidArgument("labels", f"must be at most {MAX_LABELS} labels, got {len(labels)}")
    for key, value in labels.items():
        check_label_key("labels", key)
        if len(value) > MAX_LABEL_VALUE_CHARS:
            raise InvalidArgument(
                "labels",
                f"the value of {key!r} must be at most {MAX_LABEL_VALUE_CHARS} characters, "
                f"got {len(value)}",
            )
