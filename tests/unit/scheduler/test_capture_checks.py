"""A PDF's margin, pageRanges and scale, a screenshot's clip and omitBackground: each
refusal names its field."""

from typing import Any

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from tests.helpers import task_spec
from tests.unit.scheduler.conftest import validate


def pdf(**options: Any) -> tasks_pb2.TaskSpec:
    return task_spec(screenshot=None, pdf=options)


def shot(**options: Any) -> tasks_pb2.TaskSpec:
    return task_spec(screenshot=options)


INVALID: list[tuple[str, tasks_pb2.TaskSpec, str]] = [
    ("margin without unit word", pdf(margin={"top": "1 cm"}), "pdf.margin.top"),
    ("margin in em", pdf(margin={"right": "2em"}), "pdf.margin.right"),
    ("margin negative", pdf(margin={"bottom": "-1cm"}), "pdf.margin.bottom"),
    ("margin too wide", pdf(margin={"left": "11in"}), "pdf.margin.left"),
    ("margin too wide in px", pdf(margin={"top": "961px"}), "pdf.margin.top"),
    ("page ranges words", pdf(pageRanges="first"), "pdf.pageRanges"),
    ("page ranges zero", pdf(pageRanges="0-2"), "pdf.pageRanges"),
    ("page ranges backwards", pdf(pageRanges="1-3, 5-4"), "pdf.pageRanges"),
    ("page ranges empty part", pdf(pageRanges="1,,2"), "pdf.pageRanges"),
    ("page ranges lone dash", pdf(pageRanges="-"), "pdf.pageRanges"),
    ("page ranges too long", pdf(pageRanges="1," * 200), "pdf.pageRanges"),
    ("scale too small", pdf(scale=0.05), "pdf.scale"),
    ("scale too large", pdf(scale=2.5), "pdf.scale"),
    (
        "omit background with jpeg",
        shot(format="IMAGE_FORMAT_JPEG", omitBackground=True),
        "screenshot.omitBackground",
    ),
    (
        "clip with selector",
        shot(selector="#main", clip={"width": 10, "height": 10}),
        "screenshot.clip",
    ),
    ("clip without width", shot(clip={"height": 10}), "screenshot.clip.width"),
    ("clip negative height", shot(clip={"width": 5, "height": -1}), "screenshot.clip.height"),
    ("clip negative x", shot(clip={"x": -1, "width": 5, "height": 5}), "screenshot.clip.x"),
    ("clip too far down", shot(clip={"y": 20000, "width": 5, "height": 5}), "screenshot.clip.y"),
    ("clip too wide", shot(clip={"width": 16385, "height": 5}), "screenshot.clip.width"),
]


@pytest.mark.parametrize(
    ("invalid", "field"), [(s, f) for _, s, f in INVALID], ids=[name for name, _, _ in INVALID]
)
def test_invalid_option_is_refused_naming_the_field(
    invalid: tasks_pb2.TaskSpec, field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(invalid)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ")


VALID: list[tuple[str, tasks_pb2.TaskSpec]] = [
    (
        "margins in every unit",
        pdf(margin={"top": "1cm", "right": "20px", "bottom": "0.5in", "left": "10mm"}),
    ),
    ("margin bare pixels and one side", pdf(margin={"top": "36"})),
    ("margin at the bound", pdf(margin={"left": "10in"})),
    ("page ranges", pdf(pageRanges="1-3, 5, 7-")),
    ("css page size and scale", pdf(preferCssPageSize=True, scale=0.1)),
    ("scale at its top", pdf(scale=2)),
    ("omit background png", shot(omitBackground=True)),
    (
        "clip with full page",
        shot(fullPage=True, clip={"x": 0, "y": 900, "width": 50, "height": 40}),
    ),
]


@pytest.mark.parametrize("valid", [s for _, s in VALID], ids=[name for name, _ in VALID])
def test_valid_options_are_kept_as_sent(valid: tasks_pb2.TaskSpec) -> None:
    checked = validate(valid)
    if valid.HasField("pdf"):
        assert checked.pdf.margin == valid.pdf.margin
        assert checked.pdf.page_ranges == valid.pdf.page_ranges
        assert checked.pdf.scale == valid.pdf.scale
        assert checked.pdf.prefer_css_page_size == valid.pdf.prefer_css_page_size
    else:
        assert checked.screenshot.clip == valid.screenshot.clip
        assert checked.screenshot.omit_background == valid.screenshot.omit_background
