"""`farm task create|run`'s --margin, --page-ranges, --prefer-css-page-size, --scale,
--omit-background and --clip: the spec each builds, and a usage error (exit 2) naming the
flag for each value the scheduler would refuse."""

import pytest

from farm.tasks.v1 import tasks_pb2
from tests.unit.cli.task_options import URL, refusal, spec_for


@pytest.mark.parametrize(
    ("given", "sides"),
    [
        ("1cm", ("1cm", "1cm", "1cm", "1cm")),
        ("1in,20px", ("1in", "20px", "1in", "20px")),
        ("1in, 2mm, 3cm", ("1in", "2mm", "3cm", "2mm")),
        ("1in,2mm,3cm,4px", ("1in", "2mm", "3cm", "4px")),
    ],
)
def test_margin_takes_css_shorthand(given: str, sides: tuple[str, str, str, str]) -> None:
    margin = spec_for("--margin", given).pdf.margin
    assert (margin.top, margin.right, margin.bottom, margin.left) == sides


def test_pdf_flags_shape_the_pdf() -> None:
    spec = spec_for("--page-ranges", "1-3, 5", "--prefer-css-page-size", "--scale", "0.5")
    assert not spec.HasField("screenshot")
    assert spec.pdf.page_ranges == "1-3, 5"
    assert spec.pdf.prefer_css_page_size is True
    assert spec.pdf.scale == 0.5


def test_screenshot_flags_shape_the_screenshot() -> None:
    spec = spec_for("--omit-background", "--full-page", "--clip", "0,900,50,40.5")
    assert spec.screenshot.omit_background is True
    assert spec.screenshot.clip == tasks_pb2.ScreenshotClip(x=0, y=900, width=50, height=40.5)


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--margin", "2em"], "argument --margin: must be a length in px, in, cm or mm"),
        (["--margin", "1,2,3,4,5"], "argument --margin: must be 1 to 4 comma-separated lengths"),
        (["--margin", "11in"], "argument --margin: must be at most 10in, got '11in'"),
        (["--page-ranges", "3-1"], "argument --page-ranges: range '3-1' ends before it starts"),
        (["--scale", "2.5"], "argument --scale: must be between 0.1 and 2.0, got '2.5'"),
        (["--scale", "0"], "argument --scale: must be between 0.1 and 2.0, got '0'"),
        (["--clip", "0,0,10"], "argument --clip: must be X,Y,WIDTH,HEIGHT in pixels"),
        (["--clip", "0,0,0,10"], "argument --clip: width must be above 0, got 0.0"),
        (["--clip=-1,0,5,10"], "argument --clip: x must be 0 or more, got -1.0"),
        (
            ["--format", "jpeg", "--omit-background"],
            "error: --omit-background only goes with PNG, not --format jpeg",
        ),
        (["--selector", "#a", "--clip", "0,0,5,5"], "error: --clip does not go with --selector"),
        (
            ["--pdf", "--clip", "0,0,5,5"],
            "error: --clip only goes with --screenshot, not with --pdf",
        ),
        (
            ["--screenshot", "--margin", "1cm"],
            "error: --margin only goes with --pdf, not with --screenshot",
        ),
    ],
)
def test_a_value_the_farm_would_refuse_is_a_usage_error_naming_the_flag(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, last_line = refusal(["task", "create", URL, *argv], capsys)
    assert code == 2
    assert error in last_line
