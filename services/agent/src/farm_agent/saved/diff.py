"""The difference of two screenshots: the share of pixels that changed, their box, an image.

Pure CPU work on numpy arrays (Pillow decodes and encodes the PNGs); callers run it
in a thread.
"""

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from farm_agent.saved.boxes import PixelBox

PIXEL_TOLERANCE = 16
"""A pixel counts as changed when a colour channel moved by more than this (of 255)."""
MASK_COLOR = (255, 0, 255)
CHANGED_COLOR = (255, 0, 0)
FADE_SHIFT = 2
"""The diff image shows the screenshot at a quarter of its contrast (a right shift by 2)."""

# One byte a channel throughout: a full-page screenshot has tens of millions of pixels.
Pixels = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class ImageDiff:
    """How a screenshot differs from its baseline."""

    # The share of pixels that differ, 0 to 1 (1 when the sizes differ).
    ratio: float
    # The box around every changed pixel; None when none changed.
    changed: PixelBox | None
    # The diff image (PNG): the screenshot faded, changed pixels red, masks magenta.
    image: bytes | None
    # Why the images could not be compared pixel by pixel; empty when they could.
    size_mismatch: str = ""


def compare_images(
    baseline_png: bytes, screenshot_png: bytes, masks: Sequence[PixelBox] = ()
) -> ImageDiff:
    """Compares two PNGs of the same size pixel by pixel; `masks` are painted over in both."""
    baseline = _pixels(baseline_png)
    screenshot = _pixels(screenshot_png)
    if baseline.shape != screenshot.shape:
        return ImageDiff(
            ratio=1.0,
            changed=None,
            image=None,
            size_mismatch=f"the baseline is {_size(baseline)} pixels, the screenshot "
            f"{_size(screenshot)}",
        )
    masked = np.zeros(baseline.shape[:2], dtype=bool)
    for box in masks:
        # A box partly off the image is cut to it (a negative start would count from the end).
        left, top = max(box.x, 0), max(box.y, 0)
        masked[top : max(box.y + box.height, 0), left : max(box.x + box.width, 0)] = True
    difference = np.maximum(baseline, screenshot) - np.minimum(baseline, screenshot)
    changed = (difference.max(axis=2) > PIXEL_TOLERANCE) & ~masked
    count = int(changed.sum())
    if count == 0:
        return ImageDiff(ratio=0.0, changed=None, image=None)
    return ImageDiff(
        ratio=count / changed.size,
        changed=_box_around(changed),
        image=_diff_image(screenshot, changed, masked),
    )


def _pixels(png: bytes) -> Pixels:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _size(pixels: Pixels) -> str:
    height, width = pixels.shape[:2]
    return f"{width}x{height}"


def _box_around(changed: npt.NDArray[np.bool_]) -> PixelBox:
    rows = np.flatnonzero(changed.any(axis=1))
    columns = np.flatnonzero(changed.any(axis=0))
    return PixelBox(
        x=int(columns[0]),
        y=int(rows[0]),
        width=int(columns[-1] - columns[0] + 1),
        height=int(rows[-1] - rows[0] + 1),
    )


def _diff_image(
    screenshot: Pixels, changed: npt.NDArray[np.bool_], masked: npt.NDArray[np.bool_]
) -> bytes:
    """The screenshot faded to white, with changed pixels and masks painted in."""
    faded = 255 - ((255 - screenshot) >> FADE_SHIFT)
    faded[masked] = MASK_COLOR
    faded[changed] = CHANGED_COLOR
    output = io.BytesIO()
    Image.fromarray(faded).save(output, format="PNG")
    return output.getvalue()
