"""What a screenshot with `compare` notes on the page: the baseline's key and the masks' boxes.

The comparison itself needs the tenant's baseline from storage, so it happens
after the page is done (`compare.py`); here only what the page alone can tell.
"""

import math
from dataclasses import dataclass

from playwright.async_api import FloatRect, Page

from farm.tasks.v1 import tasks_pb2
from farm_agent.errors import Stage, failures_as
from farm_agent.saved.boxes import PixelBox
from farm_core.saved import DEFAULT_COMPARE_THRESHOLD, baseline_url

_SCROLL_OFFSET = "() => [window.scrollX, window.scrollY]"
_INNER_SIZE = "() => [window.innerWidth, window.innerHeight]"


@dataclass(frozen=True)
class PendingComparison:
    """A screenshot to compare with the tenant's baseline once it is stored."""

    name: str
    threshold: float
    url: str
    viewport_width: int
    viewport_height: int
    # The masks' boxes in the screenshot's pixels (taken in CSS pixels).
    masks: tuple[PixelBox, ...]
    image: bytes


async def note_comparison(
    page: Page, options: tasks_pb2.ScreenshotOptions, image: bytes
) -> PendingComparison:
    """The key and masks of a screenshot just taken of `page` with `options`."""
    compare = options.compare
    with failures_as(Stage.CAPTURE, "screenshot.compare"):
        viewport = page.viewport_size
        if viewport is None:
            width, height = await page.evaluate(_INNER_SIZE)
        else:
            width, height = viewport["width"], viewport["height"]
        origin = await _screenshot_origin(page, options)
    masks: list[PixelBox] = []
    for index, selector in enumerate(compare.mask):
        with failures_as(Stage.SELECTOR, f"screenshot.compare.mask[{index}]", selector):
            for element in await page.locator(selector).all():
                box = await element.bounding_box()
                if box is not None:
                    masks.append(_pixel_box(box, origin))
    return PendingComparison(
        name=compare.baseline,
        threshold=compare.threshold or DEFAULT_COMPARE_THRESHOLD,
        url=baseline_url(page.url),
        viewport_width=int(width),
        viewport_height=int(height),
        masks=tuple(masks),
        image=image,
    )


async def _screenshot_origin(
    page: Page, options: tasks_pb2.ScreenshotOptions
) -> tuple[float, float]:
    """Where the screenshot's top left corner is, in the viewport's CSS pixels."""
    if options.selector:
        box = await page.locator(options.selector).first.bounding_box()
        return (box["x"], box["y"]) if box is not None else (0.0, 0.0)
    if options.full_page:
        # A full page is captured from the document's corner, wherever it is scrolled.
        scroll_x, scroll_y = await page.evaluate(_SCROLL_OFFSET)
        return -float(scroll_x), -float(scroll_y)
    return 0.0, 0.0


def _pixel_box(box: FloatRect, origin: tuple[float, float]) -> PixelBox:
    """An element's box (viewport CSS pixels) in the screenshot's pixels, rounded outward."""
    left, top = box["x"] - origin[0], box["y"] - origin[1]
    x, y = math.floor(left), math.floor(top)
    return PixelBox(
        x=x,
        y=y,
        width=math.ceil(left + box["width"]) - x,
        height=math.ceil(top + box["height"]) - y,
    )
