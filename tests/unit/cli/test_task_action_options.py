"""`farm task create|run`'s action options (screenshot quality, PDF paper) and the ranges
of its number options: the spec each builds, and a usage error (exit 2) naming the option
for each value the scheduler would refuse."""

from datetime import UTC, datetime, timedelta

import pytest

from farm.tasks.v1 import tasks_pb2
from tests.unit.cli.task_options import URL, refusal, spec_for


@pytest.mark.parametrize("quality", ["1", "55", "100"])
def test_quality_sets_a_jpeg_screenshots_quality(quality: str) -> None:
    spec = spec_for("--format", "jpeg", "--quality", quality)
    assert spec.screenshot.format == tasks_pb2.IMAGE_FORMAT_JPEG
    assert spec.screenshot.quality == int(quality)


def test_pdf_options_shape_the_pdf() -> None:
    spec = spec_for("--pdf", "--paper-format", "letter", "--landscape", "--print-background")
    assert spec.HasField("pdf")
    assert not spec.HasField("screenshot")
    assert spec.pdf.paper_format == "Letter"
    assert spec.pdf.landscape is True
    assert spec.pdf.print_background is True


def test_a_pdf_option_alone_asks_for_a_pdf() -> None:
    spec = spec_for("--landscape")
    assert spec.HasField("pdf") and not spec.HasField("screenshot")
    assert spec.pdf.landscape is True
    assert spec.pdf.paper_format == ""  # the farm fills in A4


def test_a_bare_pdf_leaves_its_options_to_the_farm() -> None:
    spec = spec_for("--pdf")
    assert spec.pdf == tasks_pb2.PdfOptions()


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["--timeout-ms", "0"], "timeout_ms", 0),
        (["--timeout-ms", "1000"], "timeout_ms", 1000),
        (["--timeout-ms", "300000"], "timeout_ms", 300000),
        (["--cache-ttl", "604800"], "cache_ttl_seconds", 604800),
    ],
)
def test_values_at_the_farms_bounds_are_sent(argv: list[str], field: str, value: int) -> None:
    assert getattr(spec_for(*argv), field) == value


def test_a_viewport_at_its_bounds_is_sent() -> None:
    spec = spec_for("--viewport", "10000x1")
    assert (spec.viewport.width, spec.viewport.height) == (10000, 1)


def test_a_deadline_a_day_ahead_is_sent() -> None:
    before = datetime.now(UTC)
    deadline = spec_for("--deadline", "+86400").deadline.ToDatetime(UTC)
    assert before + timedelta(days=1) <= deadline <= datetime.now(UTC) + timedelta(days=1)


PAPERS = "Letter, Legal, Tabloid, Ledger, A0, A1, A2, A3, A4, A5, A6"
# Fixed times, not ones from the clock: the parameters name the tests, and every pytest
# worker must collect the same names.
FAR_AHEAD = "2100-01-01T00:00:00Z"
LONG_AGO = "2020-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        # The new action options: out of range, or with an action they do not go with.
        (
            ["--format", "jpeg", "--quality", "0"],
            "argument --quality: must be from 1 to 100, got '0'",
        ),
        (
            ["--format", "jpeg", "--quality", "101"],
            "argument --quality: must be from 1 to 100, got '101'",
        ),
        (
            ["--format", "jpeg", "--quality", "high"],
            "argument --quality: must be from 1 to 100, got 'high'",
        ),
        (["--quality", "50"], "error: --quality only goes with --format jpeg"),
        (["--format", "png", "--quality", "50"], "error: --quality only goes with --format jpeg"),
        (
            ["--pdf", "--quality", "50"],
            "error: --quality only goes with --screenshot, not with --pdf",
        ),
        (
            ["--paper-format", "B5"],
            f"argument --paper-format: must be one of {PAPERS}, got 'B5'",
        ),
        (
            ["--screenshot", "--landscape"],
            "error: --landscape only goes with --pdf, not with --screenshot",
        ),
        (
            ["--full-page", "--paper-format", "A3", "--print-background"],
            "error: --paper-format, --print-background only go with --pdf, not with --screenshot",
        ),
        (
            ["--content", "html", "--print-background"],
            "error: --print-background only goes with --pdf, not with --content",
        ),
        (
            ["--format", "jpeg", "--compare", "home"],
            "error: --compare compares PNG screenshots only, not --format jpeg",
        ),
        (
            ["--compare", "home", *["--mask", "#ad"] * 51],
            "error: --mask must be given at most 50 times, got 51",
        ),
        # The common options, at the scheduler's bounds (the farm refused these, exit 1).
        (
            ["--timeout-ms", "999"],
            "argument --timeout-ms: must be 0 or from 1000 to 300000, got '999'",
        ),
        (
            ["--timeout-ms", "300001"],
            "argument --timeout-ms: must be 0 or from 1000 to 300000, got '300001'",
        ),
        (
            ["--cache-ttl", "604801"],
            "argument --cache-ttl: must be from 0 to 604800, got 604801",
        ),
        (
            ["--viewport", "0x800"],
            "argument --viewport: width and height must be from 1 to 10000, got '0x800'",
        ),
        (
            ["--viewport", "1280x10001"],
            "argument --viewport: width and height must be from 1 to 10000, got '1280x10001'",
        ),
        # ASCII digits only (int() refused the superscript two str.isdigit let through).
        (
            ["--viewport", "\u00b2x800"],
            "argument --viewport: expected WIDTHxHEIGHT such as 1280x800, got '\u00b2x800'",
        ),
        (
            ["--deadline", "+0"],
            "argument --deadline: +SECONDS must be from 1 to 86400, got '+0'",
        ),
        (
            ["--deadline", "+86401"],
            "argument --deadline: +SECONDS must be from 1 to 86400, got '+86401'",
        ),
        (
            ["--deadline", FAR_AHEAD],
            f"argument --deadline: must be at most 24 hours ahead, got '{FAR_AHEAD}'",
        ),
        (
            ["--deadline", LONG_AGO],
            f"argument --deadline: must be in the future, got '{LONG_AGO}'",
        ),
    ],
)
@pytest.mark.parametrize("verb", ["create", "run"])
def test_a_value_the_farm_would_refuse_is_a_usage_error_naming_the_option(
    verb: str, argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, last_line = refusal(["task", verb, URL, *argv], capsys)

    assert code == 2
    assert last_line.endswith(error)


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["session", "run", "ses_1", "--timeout-ms", "999"],
            "argument --timeout-ms: must be 0 or from 1000 to 300000, got '999'",
        ),
        (
            ["session", "create", "--viewport", "10001x10"],
            "argument --viewport: width and height must be from 1 to 10000, got '10001x10'",
        ),
    ],
)
def test_a_session_value_the_farm_would_refuse_is_a_usage_error(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, last_line = refusal(argv, capsys)

    assert code == 2
    assert last_line.endswith(error)
