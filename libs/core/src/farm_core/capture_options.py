"""The bounds of a PDF's margin, pageRanges and scale, and a screenshot's clip.

Each check returns what is wrong (None when nothing is), so that the scheduler
and the CLI word their refusals alike, each naming its own field or flag.
"""

import math
import re

MIN_PDF_SCALE = 0.1
MAX_PDF_SCALE = 2.0
"""Chromium's bounds of a PDF's scale."""
MAX_MARGIN_INCHES = 10.0
MAX_PAGE_RANGES_CHARS = 256
MAX_CLIP_PIXELS = 16384.0
"""The most CSS pixels a clip may start at or span, each way."""

# CSS units Chromium's printing (through Playwright) takes; a bare number is pixels.
_INCHES_PER_UNIT = {"px": 1 / 96, "in": 1.0, "cm": 1 / 2.54, "mm": 1 / 25.4}
_LENGTH = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(px|in|cm|mm)?")
_PAGE_RANGE = re.compile(r"(\d+)?\s*(?:(-)\s*(\d+)?)?")


def margin_problem(text: str) -> str | None:
    """A CSS length in px, in, cm or mm (a bare number is px), at most MAX_MARGIN_INCHES."""
    match = _LENGTH.fullmatch(text.strip().lower())
    if match is None:
        return f'must be a length in px, in, cm or mm such as "1cm" or "20px", got {text!r}'
    inches = float(match.group(1)) * _INCHES_PER_UNIT[match.group(2) or "px"]
    if inches > MAX_MARGIN_INCHES:
        return f"must be at most {MAX_MARGIN_INCHES:g}in, got {text!r}"
    return None


def margin_sides(text: str) -> tuple[str, str, str, str] | None:
    """1 to 4 comma-separated lengths as (top, right, bottom, left); None for another count.

    As CSS's margin shorthand orders them: one is every side; two are top and bottom,
    then left and right; three are top, left and right, bottom; four are top, right,
    bottom, left. The lengths themselves are checked by margin_problem.
    """
    sides = [side.strip() for side in text.split(",")]
    if len(sides) == 1:
        return sides[0], sides[0], sides[0], sides[0]
    if len(sides) == 2:
        return sides[0], sides[1], sides[0], sides[1]
    if len(sides) == 3:
        return sides[0], sides[1], sides[2], sides[1]
    if len(sides) == 4:
        return sides[0], sides[1], sides[2], sides[3]
    return None


def page_ranges_problem(text: str) -> str | None:
    """Comma-separated pages and ranges ("1-3, 5", "4-"), each page from 1, each range rising."""
    if len(text) > MAX_PAGE_RANGES_CHARS:
        return f"must be at most {MAX_PAGE_RANGES_CHARS} characters"
    for part in text.split(","):
        match = _PAGE_RANGE.fullmatch(part.strip())
        first, dash, last = match.groups() if match else (None, None, None)
        if match is None or (first is None and last is None):
            return f'must be pages and ranges such as "1-3, 5", got {text!r}'
        if not dash and first is None:
            return f"has an empty page in {text!r}"
        if 0 in [int(n) for n in (first, last) if n is not None]:
            return f"pages count from 1, got {text!r}"
        if first is not None and last is not None and int(first) > int(last):
            return f"range {part.strip()!r} ends before it starts"
    return None


def scale_problem(scale: float) -> str | None:
    """0 (then 1) or within Chromium's bounds."""
    if scale != 0 and not MIN_PDF_SCALE <= scale <= MAX_PDF_SCALE:
        return f"must be 0 or between {MIN_PDF_SCALE} and {MAX_PDF_SCALE}, got {scale}"
    return None


def clip_problem(name: str, value: float) -> str | None:
    """A clip's x or y 0 or more, its width or height above 0; each at most MAX_CLIP_PIXELS."""
    if not math.isfinite(value) or value > MAX_CLIP_PIXELS:
        return f"must be at most {MAX_CLIP_PIXELS:g}, got {value}"
    if name in ("width", "height") and value <= 0:
        return f"must be above 0, got {value}"
    if value < 0:
        return f"must be 0 or more, got {value}"
    return None
