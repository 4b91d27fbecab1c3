"""A rectangle of a screenshot in pixels: what a mask covers, where a diff changed."""

from dataclasses import dataclass


@dataclass(frozen=True)
class PixelBox:
    """A rectangle of an image, in pixels from its top left corner."""

    x: int
    y: int
    width: int
    height: int
