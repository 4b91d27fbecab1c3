"""Comparing a screenshot with its baseline: ratio, changed box, masks, sizes, the diff image."""

import io

import numpy as np
from PIL import Image, ImageDraw

from farm_agent.saved.boxes import PixelBox
from farm_agent.saved.diff import CHANGED_COLOR, compare_images


def page(width: int = 200, height: int = 100, button: str = "#3366cc") -> bytes:
    """A PNG like a simple page: white, a heading bar, and a button of the given colour."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, 189, 24), fill="#222222")
    draw.rectangle((40, 50, 79, 69), fill=button)
    output = io.BytesIO()
    image.save(output, format="PNG")
    return output.getvalue()


def test_the_same_image_differs_in_nothing() -> None:
    diff = compare_images(page(), page())

    assert diff.ratio == 0
    assert diff.changed is None
    assert diff.image is None
    assert diff.size_mismatch == ""


def test_a_changed_element_is_boxed_and_counted() -> None:
    diff = compare_images(page(), page(button="#cc3333"))

    assert diff.changed == PixelBox(x=40, y=50, width=40, height=20)
    assert diff.ratio == 40 * 20 / (200 * 100)


def test_the_diff_image_paints_the_changed_pixels_over_the_faded_screenshot() -> None:
    diff = compare_images(page(), page(button="#cc3333"))

    assert diff.image is not None
    with Image.open(io.BytesIO(diff.image)) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape == (100, 200, 3)
    assert tuple(pixels[60, 60]) == CHANGED_COLOR
    # Unchanged parts are the screenshot faded toward white, not painted.
    assert tuple(pixels[90, 190]) == (255, 255, 255)
    assert tuple(pixels[15, 100]) != CHANGED_COLOR


def test_a_mask_over_the_change_hides_it() -> None:
    diff = compare_images(
        page(), page(button="#cc3333"), masks=[PixelBox(x=35, y=45, width=50, height=30)]
    )

    assert diff.ratio == 0
    assert diff.changed is None


def test_a_mask_elsewhere_hides_nothing_and_a_box_off_the_image_is_cut() -> None:
    masks = [
        PixelBox(x=-20, y=-20, width=30, height=30),
        PixelBox(x=150, y=80, width=500, height=9),
    ]

    diff = compare_images(page(), page(button="#cc3333"), masks=masks)

    assert diff.changed == PixelBox(x=40, y=50, width=40, height=20)


def test_images_of_different_sizes_differ_wholly_and_say_so() -> None:
    diff = compare_images(page(), page(height=150))

    assert diff.ratio == 1
    assert diff.changed is None
    assert diff.image is None
    assert diff.size_mismatch == "the baseline is 200x100 pixels, the screenshot 200x150"


def test_a_change_within_the_tolerance_is_not_a_change() -> None:
    diff = compare_images(page(button="#3366cc"), page(button="#3a6acc"))

    assert diff.ratio == 0
