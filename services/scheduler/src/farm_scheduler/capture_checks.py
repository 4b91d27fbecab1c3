"""Checks a PDF's margins, page ranges and scale, and a screenshot's clip and background.

Each error names the field as sent in JSON. Chromium's own bounds are held here, so
that a spec it would refuse fails at once with its field named, not as a browser error.
"""

from farm.tasks.v1 import tasks_pb2
from farm_core.capture_options import (
    clip_problem,
    margin_problem,
    page_ranges_problem,
    scale_problem,
)
from farm_core.errors import InvalidArgument

_MARGIN_SIDES = ("top", "right", "bottom", "left")
_CLIP_FIELDS = ("x", "y", "width", "height")


def check_pdf_options(pdf: tasks_pb2.PdfOptions) -> None:
    """Checks the margins, page ranges and scale (0 stays: the agent prints at 1)."""
    for side in _MARGIN_SIDES:
        text = getattr(pdf.margin, side)
        if text and (problem := margin_problem(text)):
            raise InvalidArgument(f"pdf.margin.{side}", problem)
    if pdf.page_ranges and (problem := page_ranges_problem(pdf.page_ranges)):
        raise InvalidArgument("pdf.pageRanges", problem)
    if problem := scale_problem(pdf.scale):
        raise InvalidArgument("pdf.scale", problem)


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
    for name in _CLIP_FIELDS:
        if problem := clip_problem(name, getattr(screenshot.clip, name)):
            raise InvalidArgument(f"screenshot.clip.{name}", problem)
