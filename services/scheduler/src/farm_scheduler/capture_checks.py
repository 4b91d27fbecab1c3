"""Checks a PDF's margins, page ranges and scale, and a screenshot's clip and background.

Each error names the field as sent in JSON. Chromium's own bounds are held here, so
that a spec it would refuse fails at once with its field named, not as a browser error.
"""

import math
import re

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument

MIN_PDF_SCALE = 0.1
MAX_PDF_SCALE = 2.0
MAX_MARGIN_INCHES = 10.0
MAX_PAGE_RANGES_CHARS = 256
MAX_CLIP_PIXELS = 16384.0
"""The most CSS pixels a clip may start at or span, each way."""

# CSS units Chromium's printing (through Playwright) takes; a bare number is pixels.
_INCHES_PER_UNIT = {"px": 1 / 96, "in": 1.0, "cm": 1 / 2.54, "mm": 1 / 25.4}
_LENGTH = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(px|in|cm|mm)?")
_PAGE_RANGE = re.compile(r"(\d+)?\s*(?:(-)\s*(\d+)?)?")
_MARGIN_SIDES = ("top", "right", "bottom", "left")


def check_pdf_options(pdf: tasks_pb2.PdfOptions) -> None:
    """Checks the margins, page ranges and scale (0 stays: the agent prints at 1)."""
    if pdf.HasField("margin"):
        for side in _MARGIN_SIDES:
            _check_length(f"pdf.margin.{side}", getattr(pdf.margin, side))
    _check_page_ranges(pdf.page_ranges)
    if pdf.scale != 0 and not MIN_PDF_SCALE <= pdf.scale <= MAX_PDF_SCALE:
        raise InvalidArgument(
            "pdf.scale",
            f"must be 0 or between {MIN_PDF_SCALE} and {MAX_PDF_SCALE}, got {pdf.scale}",
        )


def _check_length(field: str, text: str) -> None:
    """A CSS length in px, in, cm or mm (a bare number is px), at most MAX_MARGIN_INCHES."""
    if not text:
        return
    match = _LENGTH.fullmatch(text.strip().lower())
    if match is None:
        raise InvalidArgument(
            field, f'must be a length in px, in, cm or mm such as "1cm" or "20px", got {text!r}'
        )
    inches = float(match.group(1)) * _INCHES_PER_UNIT[match.group(2) or "px"]
    if inches > MAX_MARGIN_INCHES:
        raise InvalidArgument(field, f"must be at most {MAX_MARGIN_INCHES:g}in, got {text!r}")


def _check_page_ranges(text: str) -> None:
    """Comma-separated pages and ranges ("1-3, 5", "4-"), each page from 1, each range rising."""
    if not text:
        return
    if len(text) > MAX_PAGE_RANGES_CHARS:
        raise InvalidArgument(
            "pdf.pageRanges", f"must be at most {MAX_PAGE_RANGES_CHARS} characters"
        )
    for part in text.split(","):
        match = _PAGE_RANGE.fullmatch(part.strip())
        first, dash, last = match.groups() if match else (None, None, None)
        if match is None or (first is None and last is None):
            raise InvalidArgument(
                "pdf.pageRanges", f'must be pages and ranges such as "1-3, 5", got {text!r}'
            )
        if not dash and first is None:
            raise InvalidArgument("pdf.pageRanges", f"has an empty page in {text!r}")
        numbers = [int(n) for n in (first, last) if n is not None]
        if 0 in numbers:
            raise InvalidArgument("pdf.pageRanges", f"pages count from 1, got {text!r}")
        if first is not None and last is not None and int(first) > int(last):
            raise InvalidArgument("pdf.pageRanges", f"range {part.strip()!r} ends before it starts")


def check_screenshot_options(screenshot: tasks_pb2.ScreenshotOptions) -> None:
    """The background left out only for PNG; a clip inside the bounds, and not with a selector."""
    if screenshot.omit_background and screenshot.format == tasks_pb2.IMAGE_FORMAT_JPEG:
        raise InvalidArgument(
            "screenshot.omitBackground", "is only allowed with IMAGE_FORMAT_PNG (JPEG has no alpha)"
        )
    if not screenshot.HasField("clip"):
        return
    if screenshot.selector:
        raise InvalidArgument("screenshot.clip", "is not allowed with screenshot.selector")
    clip = screenshot.clip
    for name, value, least in (
        ("x", clip.x, 0.0),
        ("y", clip.y, 0.0),
        ("width", clip.width, None),
        ("height", clip.height, None),
    ):
        field = f"screenshot.clip.{name}"
        if not math.isfinite(value) or value > MAX_CLIP_PIXELS:
            raise InvalidArgument(field, f"must be at most {MAX_CLIP_PIXELS:g}, got {value}")
        if least is None and value <= 0:
            raise InvalidArgument(field, f"must be above 0, got {value}")
        if least is not None and value < least:
            raise InvalidArgument(field, f"must be 0 or more, got {value}")
