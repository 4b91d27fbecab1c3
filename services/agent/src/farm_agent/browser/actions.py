"""A task's action on a loaded page: screenshot, pdf, content, extract, script, audit, snapshot."""

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, struct_pb2
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page, PdfMargins

from farm.tasks.v1 import tasks_pb2
from farm_agent import metrics
from farm_agent.audits.observer import Observations
from farm_agent.audits.runner import run_audits
from farm_agent.browser.elements import on_element
from farm_agent.errors import Stage, TaskFailure, failures_as, script_failures
from farm_agent.saved.capture import PendingComparison, note_comparison
from farm_agent.saved.profiles import ProfileToSave
from farm_core.extract_rules import ExtractField
from farm_core.task_defaults import ACTIONS, DEFAULT_JPEG_QUALITY, DEFAULT_PAPER_FORMAT
from farm_core.task_errors import ErrorCode

TimeLeftMs = Callable[[], float]
"""How many milliseconds a Playwright call may still wait."""


@dataclass(frozen=True)
class CapturedArtifact:
    """Bytes a task produced, to be stored under `name` before the result is reported."""

    name: str
    kind: "tasks_pb2.ArtifactKind.ValueType"
    content_type: str
    data: bytes


@dataclass
class Capture:
    """What an attempt produced: the result (without artifact refs yet) and the artifacts."""

    result: tasks_pb2.TaskResult = field(default_factory=tasks_pb2.TaskResult)
    artifacts: list[CapturedArtifact] = field(default_factory=list)
    # A screenshot to compare with the tenant's baseline once stored (screenshot.compare).
    comparison: PendingComparison | None = None
    # The page's cookies and local storage to save as a profile (save_profile).
    profile_to_save: ProfileToSave | None = None


async def run_action(
    page: Page,
    spec: tasks_pb2.TaskSpec,
    time_left_ms: TimeLeftMs,
    max_text_bytes: int,
    seen: Observations | None = None,
) -> Capture:
    """Does the spec's one action on the page; `seen`: the page's loading, for an audit."""
    if spec.HasField("screenshot"):
        return await screenshot(page, spec.screenshot, time_left_ms)
    if spec.HasField("pdf"):
        return await pdf(page, spec.pdf)
    if spec.HasField("content"):
        return await content(page, spec.content, max_text_bytes)
    if spec.HasField("extract"):
        return await extract(page, spec.extract, time_left_ms, max_text_bytes)
    if spec.HasField("script"):
        return await script(page, spec.script, time_left_ms, max_text_bytes)
    if spec.HasField("snapshot"):
        return await snapshot(page, time_left_ms, max_text_bytes)
    if spec.HasField("audit"):
        return Capture(
            result=tasks_pb2.TaskResult(
                audit=await run_audits(page, spec.audit, seen, time_left_ms)
            )
        )
    raise TaskFailure(ErrorCode.INTERNAL, f"the task sets no action ({', '.join(ACTIONS)})")


async def screenshot(
    page: Page, options: tasks_pb2.ScreenshotOptions, time_left_ms: TimeLeftMs
) -> Capture:
    """A PNG or JPEG of the viewport, the full page or one element."""
    jpeg = options.format == tasks_pb2.IMAGE_FORMAT_JPEG
    settings: dict[str, Any] = {"type": "jpeg" if jpeg else "png", "timeout": time_left_ms()}
    if jpeg:
        settings["quality"] = options.quality or DEFAULT_JPEG_QUALITY
    if options.omit_background:
        settings["omit_background"] = True
    if options.HasField("compare"):
        # In CSS pixels, so that a baseline's boxes are the page's, whatever the device scale.
        settings["scale"] = "css"
    if options.selector:

        async def shot(element: Locator) -> bytes:
            return await element.screenshot(**settings)

        image = await on_element(page, options.selector, "screenshot.selector", shot)
    else:
        if options.HasField("clip"):
            clip = options.clip
            settings["clip"] = {
                "x": clip.x,
                "y": clip.y,
                "width": clip.width,
                "height": clip.height,
            }
        with failures_as(Stage.CAPTURE, "screenshot"), _clip_outside(options):
            image = await page.screenshot(full_page=options.full_page, **settings)
    if not image:
        raise _no_image(jpeg)
    metrics.screenshots_total.inc()
    content_type = "image/jpeg" if jpeg else "image/png"
    return Capture(
        artifacts=[
            CapturedArtifact("screenshot", tasks_pb2.ARTIFACT_KIND_SCREENSHOT, content_type, image)
        ],
        comparison=(
            await note_comparison(page, options, image) if options.HasField("compare") else None
        ),
    )


JPEG_MOST_PIXELS = 65535
"""The most pixels a JPEG holds a side; Chromium answers a larger capture with no bytes."""


def _no_image(jpeg: bool) -> TaskFailure:
    """The failure of a capture Chromium answered with no bytes (stored, it was an empty file)."""
    if jpeg:
        return TaskFailure(
            ErrorCode.RESULT_TOO_LARGE,
            f"screenshot: the capture is more than {JPEG_MOST_PIXELS} pixels tall or wide, the"
            " most a JPEG holds, so Chromium made no image; ask for IMAGE_FORMAT_PNG, or less"
            " of the page (no fullPage, a selector, a smaller deviceScaleFactor)",
        )
    return TaskFailure(ErrorCode.BROWSER_CRASHED, "screenshot: the browser made an empty image")


# Chromium's refusal of margins as wide or tall as the paper.
_NO_CONTENT_AREA_SIGN = "content area is empty"
# Playwright's refusal of a clip that leaves nothing of the captured area.
_CLIP_OUTSIDE_SIGN = "clipped area is either empty or outside"
# Chromium's refusal of page ranges that leave no page of the document ("Page range
# exceeds page count"); pages past the end beside others are left out silently.
_PAGE_RANGE_SIGN = "page range"


@contextlib.contextmanager
def _clip_outside(options: tasks_pb2.ScreenshotOptions) -> Iterator[None]:
    """A clip outside the page is the spec's fault: final, naming screenshot.clip."""
    try:
        yield
    except PlaywrightError as error:
        if not options.HasField("clip") or _CLIP_OUTSIDE_SIGN not in error.message.lower():
            raise
        area = "page" if options.full_page else "viewport"
        raise TaskFailure(
            ErrorCode.OPTION_OUT_OF_RANGE,
            f"screenshot.clip: the rectangle leaves nothing of the {area}"
            f" ({error.message.splitlines()[0]})",
        ) from None


async def pdf(page: Page, options: tasks_pb2.PdfOptions) -> Capture:
    """The page printed to PDF."""
    given = options.margin
    margin = PdfMargins(
        top=given.top.strip() or None,
        right=given.right.strip() or None,
        bottom=given.bottom.strip() or None,
        left=given.left.strip() or None,
    )
    try:
        with failures_as(Stage.CAPTURE, "pdf"):
            document = await page.pdf(
                format=options.paper_format or DEFAULT_PAPER_FORMAT,
                landscape=options.landscape,
                print_background=options.print_background,
                margin=margin,
                page_ranges=options.page_ranges,
                prefer_css_page_size=options.prefer_css_page_size,
                scale=options.scale or 1.0,
            )
    except TaskFailure as failure:
        # Chromium's refusals of the spec, which would be taken for its own failure and retried.
        lowered = failure.message.lower()
        if options.page_ranges and _PAGE_RANGE_SIGN in lowered:
            raise TaskFailure(
                ErrorCode.OPTION_OUT_OF_RANGE,
                f"pdf.pageRanges: {options.page_ranges!r} names no page of the document"
                f" ({failure.message})",
            ) from None
        if _NO_CONTENT_AREA_SIGN in lowered:
            raise TaskFailure(
                ErrorCode.OPTION_OUT_OF_RANGE,
                f"pdf.margin: the margins leave no room on the paper ({failure.message})",
            ) from None
        raise
    return Capture(
        artifacts=[
            CapturedArtifact("pdf", tasks_pb2.ARTIFACT_KIND_PDF, "application/pdf", document)
        ]
    )


# The body's rendered text; a document without a body (an SVG or XML file, whose root
# is no HTML element) has its root's text. Waiting for a "body" element instead held a
# body-less page until the attempt's TIMEOUT, and then every retry.
_PAGE_TEXT = """() => {
  const root = document.body ?? document.documentElement;
  if (!root) return "";
  return root instanceof HTMLElement ? root.innerText : (root.textContent ?? "");
}"""


async def content(page: Page, options: tasks_pb2.ContentOptions, max_text_bytes: int) -> Capture:
    """The page's HTML or body text: cut in the result, whole in the artifact."""
    with failures_as(Stage.CAPTURE, "content"):
        if options.format == tasks_pb2.CONTENT_FORMAT_TEXT:
            text = await page.evaluate(_PAGE_TEXT)
            content_type = "text/plain; charset=utf-8"
        else:
            text = await page.content()
            content_type = "text/html; charset=utf-8"
    data = text.encode()
    return Capture(
        result=tasks_pb2.TaskResult(text=cut_utf8(data, max_text_bytes)),
        artifacts=[
            CapturedArtifact("content", tasks_pb2.ARTIFACT_KIND_CONTENT, content_type, data)
        ],
    )


async def extract(
    page: Page, options: tasks_pb2.ExtractOptions, time_left_ms: TimeLeftMs, max_bytes: int
) -> Capture:
    """Values by selector: first match's text or attribute (null if none), or lists of all."""
    values: dict[str, Any] = {}
    for name, rule in sorted(options.fields.items()):
        parsed = ExtractField.parse(rule)
        with failures_as(Stage.SELECTOR, f"extract.fields.{name}", parsed.selector):
            values[name] = await _extract_one(page, parsed, time_left_ms)
    return Capture(result=tasks_pb2.TaskResult(json=json_value(values, "extract", max_bytes)))


# "@value", "@checked" and "@selected" of a form control read its live state (what a
# fill, check or select step, or the user, made it), not the attribute, which keeps
# the page's initial value: the value as a string, checked and selected as booleans.
# Any other attribute, and these on other elements, is the attribute's text or null.
_ATTRIBUTE_VALUE = """(e, name) => {
  const kinds = new Map([
    ["value", [HTMLInputElement, HTMLTextAreaElement, HTMLSelectElement, HTMLOptionElement,
               HTMLButtonElement, HTMLOutputElement]],
    ["checked", [HTMLInputElement]],
    ["selected", [HTMLOptionElement]],
  ]).get(name.toLowerCase()) || [];
  return kinds.some((kind) => e instanceof kind) ? e[name.toLowerCase()] : e.getAttribute(name);
}"""
_ATTRIBUTE_VALUES = f"(elements, name) => elements.map((e) => ({_ATTRIBUTE_VALUE})(e, name))"


async def _extract_one(page: Page, rule: ExtractField, time_left_ms: TimeLeftMs) -> Any:
    matches = page.locator(rule.selector)
    if rule.every_match:
        if rule.attribute is None:
            return await matches.all_inner_texts()
        return await matches.evaluate_all(_ATTRIBUTE_VALUES, rule.attribute)
    if await matches.count() == 0:
        return None
    if rule.attribute is None:
        return await matches.first.inner_text(timeout=time_left_ms())
    return await matches.first.evaluate(_ATTRIBUTE_VALUE, rule.attribute, timeout=time_left_ms())


async def script(
    page: Page, options: tasks_pb2.ScriptOptions, time_left_ms: TimeLeftMs, max_bytes: int
) -> Capture:
    """The JSON value the page returns for the script's function expression."""
    value = await evaluated(page, options.source, "script.source", time_left_ms)
    return Capture(result=tasks_pb2.TaskResult(json=json_value(value, "script", max_bytes)))


async def evaluated(page: Page, source: str, field: str, time_left_ms: TimeLeftMs) -> Any:
    """What `source` returns in the page, its promise awaited while the attempt has time.

    Playwright's evaluate has no time limit of its own: a promise that never settles
    would hold the attempt until its own TIMEOUT, which names no field.
    """
    allowed_ms = time_left_ms()
    with script_failures(field, source):
        try:
            async with asyncio.timeout(allowed_ms / 1000):
                return await page.evaluate(source)
        except TimeoutError:
            raise TaskFailure(
                ErrorCode.TIMEOUT,
                f"{field}: the function did not return, or its promise settle,"
                f" within the {allowed_ms:.0f} ms the attempt had left",
            ) from None


async def snapshot(page: Page, time_left_ms: TimeLeftMs, max_text_bytes: int) -> Capture:
    """The page's accessibility tree, each element with a reference (`[ref=e5]`).

    Playwright's snapshot for AI; the page keeps the references of its latest one,
    so a later step of the same session can name an element "aria-ref=e5".
    """
    with failures_as(Stage.CAPTURE, "snapshot"):
        tree = await page.aria_snapshot(mode="ai", timeout=time_left_ms())
    return Capture(result=tasks_pb2.TaskResult(text=cut_utf8(tree.encode(), max_text_bytes)))


_CYCLE = (
    "it refers to itself (an object holding itself, at any depth), which JSON cannot "
    "write out (return a copy without the loop)"
)
_NOT_A_NUMBER = (
    "it holds NaN, Infinity or -Infinity, which JSON has no form for "
    "(return null or a string in their place)"
)


def json_value(value: Any, field_name: str, max_bytes: int) -> struct_pb2.Value:
    """`value` as a protobuf Value; fails if it is not JSON or is larger than `max_bytes`."""
    try:
        encoded = json.dumps(value, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as error:
        code = ErrorCode.SCRIPT_FAILED if field_name == "script" else ErrorCode.INTERNAL
        # json's own words for these ("Out of range float values are not JSON
        # compliant") name neither the value nor a way out.
        problem = str(error)
        if isinstance(error, ValueError):
            problem = _CYCLE if "circular reference" in problem.lower() else _NOT_A_NUMBER
        raise TaskFailure(code, f"{field_name}: the result is not JSON: {problem}") from error
    if len(encoded.encode()) > max_bytes:
        raise TaskFailure(
            ErrorCode.RESULT_TOO_LARGE,
            f"{field_name}: the result is {len(encoded.encode())} bytes of JSON; "
            f"the limit is {max_bytes}",
        )
    return json_format.Parse(encoded, struct_pb2.Value())


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} values cannot be returned")


def cut_utf8(data: bytes, max_bytes: int) -> str:
    """The first `max_bytes` bytes of UTF-8 `data` as text, never splitting a character."""
    return data[:max_bytes].decode("utf-8", errors="ignore")


def shorten_text(result: tasks_pb2.TaskResult, overflow: int) -> bool:
    """Cuts `overflow` bytes off the result's text (its artifact keeps all of it).

    False, and the text left as it was, when the text is shorter than that.
    """
    text = result.text.encode()
    if len(text) < overflow:
        return False
    # Leave room for the text's length prefix, which may not shrink with it.
    result.text = cut_utf8(text, len(text) - overflow - 16)
    return True
