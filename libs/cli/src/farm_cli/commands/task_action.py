"""A task's action from the command line: --screenshot, --pdf or --content and their options.

The option ranges are the scheduler's own (`farm_core.task_limits`), so a value the farm
would refuse is a usage error here, naming the option, before anything is sent.
"""

import argparse

from farm.tasks.v1 import tasks_pb2
from farm_cli.commands.ranges import whole_number_in
from farm_cli.commands.task_text import mask, saved_name, selector
from farm_cli.console import UsageError
from farm_core.capture_options import (
    MAX_PDF_SCALE,
    MIN_PDF_SCALE,
    clip_problem,
    margin_problem,
    margin_sides,
    page_ranges_problem,
    scale_problem,
)
from farm_core.task_defaults import DEFAULT_JPEG_QUALITY, DEFAULT_PAPER_FORMAT
from farm_core.task_limits import (
    MAX_COMPARE_MASKS,
    MAX_JPEG_QUALITY,
    MIN_JPEG_QUALITY,
    PAPER_FORMATS,
)

IMAGE_FORMATS = {"png": tasks_pb2.IMAGE_FORMAT_PNG, "jpeg": tasks_pb2.IMAGE_FORMAT_JPEG}
CONTENT_FORMATS = {"html": tasks_pb2.CONTENT_FORMAT_HTML, "text": tasks_pb2.CONTENT_FORMAT_TEXT}
# The flags that shape one action: argparse destination -> option string.
SCREENSHOT_FLAGS = {
    "full_page": "--full-page",
    "image_format": "--format",
    "quality": "--quality",
    "selector": "--selector",
    "compare": "--compare",
    "omit_background": "--omit-background",
    "clip": "--clip",
}
PDF_FLAGS = {
    "paper_format": "--paper-format",
    "landscape": "--landscape",
    "print_background": "--print-background",
    "margin": "--margin",
    "page_ranges": "--page-ranges",
    "prefer_css_page_size": "--prefer-css-page-size",
    "scale": "--scale",
}


def paper_format(text: str) -> str:
    """An argparse type: a paper format the farm knows (any case), in its canonical spelling."""
    canonical = PAPER_FORMATS.get(text.lower())
    if canonical is None:
        raise argparse.ArgumentTypeError(
            f"must be one of {', '.join(PAPER_FORMATS.values())}, got {text!r}"
        )
    return canonical


def margin(text: str) -> tuple[str, str, str, str]:
    """An argparse type: 1 to 4 comma-separated lengths, as CSS's margin shorthand orders them."""
    sides = margin_sides(text)
    if sides is None:
        raise argparse.ArgumentTypeError(f"must be 1 to 4 comma-separated lengths, got {text!r}")
    for side in sides:
        if problem := margin_problem(side):
            raise argparse.ArgumentTypeError(problem)
    return sides


def page_ranges(text: str) -> str:
    """An argparse type: pages and ranges such as "1-3, 5"."""
    if problem := page_ranges_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return text


def scale(text: str) -> float:
    """An argparse type: a PDF's scale within Chromium's bounds."""
    try:
        value = float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from error
    if value == 0 or scale_problem(value):
        raise argparse.ArgumentTypeError(
            f"must be between {MIN_PDF_SCALE} and {MAX_PDF_SCALE}, got {text!r}"
        )
    return value


def clip(text: str) -> tuple[float, float, float, float]:
    """An argparse type: X,Y,WIDTH,HEIGHT in CSS pixels."""
    parts = text.split(",")
    try:
        values = [float(part) for part in parts]
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"must be X,Y,WIDTH,HEIGHT in pixels, got {text!r}"
        ) from error
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"must be X,Y,WIDTH,HEIGHT in pixels, got {text!r}")
    for name, value in zip(("x", "y", "width", "height"), values, strict=True):
        if problem := clip_problem(name, value):
            raise argparse.ArgumentTypeError(f"{name} {problem}")
    x, y, width, height = values
    return x, y, width, height


def add_action_arguments(parser: argparse.ArgumentParser) -> None:
    """The action flags of `task create|run` and the options of each action."""
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--screenshot", action="store_true", help="take a screenshot (the default action)"
    )
    action.add_argument("--pdf", action="store_true", help="print the page to PDF")
    action.add_argument(
        "--content", choices=sorted(CONTENT_FORMATS), help="return the page's html or text"
    )
    shot = parser.add_argument_group("screenshot options")
    shot.add_argument("--full-page", action="store_true", help="capture the whole page")
    shot.add_argument(
        "--format", dest="image_format", choices=sorted(IMAGE_FORMATS), help="default: png"
    )
    shot.add_argument(
        "--quality",
        type=whole_number_in(MIN_JPEG_QUALITY, MAX_JPEG_QUALITY),
        metavar="N",
        help=f"JPEG quality, {MIN_JPEG_QUALITY} to {MAX_JPEG_QUALITY} (with --format jpeg; "
        f"default {DEFAULT_JPEG_QUALITY})",
    )
    shot.add_argument(
        "--selector", type=selector, help="capture only the first element matching this CSS"
    )
    shot.add_argument(
        "--compare", type=saved_name, metavar="BASELINE", help="compare with this baseline (PNG)"
    )
    shot.add_argument(
        "--mask",
        action="append",
        type=mask,
        default=[],
        metavar="CSS",
        help=f"mask in --compare (repeatable, at most {MAX_COMPARE_MASKS})",
    )
    shot.add_argument(
        "--omit-background",
        action="store_true",
        help="leave the page's default white background transparent (PNG)",
    )
    shot.add_argument(
        "--clip",
        type=clip,
        metavar="X,Y,W,H",
        help="capture only this rectangle, in CSS pixels (of the page with --full-page)",
    )
    pdf = parser.add_argument_group("pdf options")
    pdf.add_argument(
        "--paper-format",
        type=paper_format,
        metavar="FORMAT",
        help=f"one of {', '.join(PAPER_FORMATS.values())} (default {DEFAULT_PAPER_FORMAT})",
    )
    pdf.add_argument("--landscape", action="store_true", help="print in landscape orientation")
    pdf.add_argument(
        "--print-background", action="store_true", help="print background graphics and colours"
    )
    pdf.add_argument(
        "--margin",
        type=margin,
        metavar="LENGTHS",
        help='1 to 4 comma-separated lengths in CSS order, e.g. "1cm" or "1in,0.5in"',
    )
    pdf.add_argument(
        "--page-ranges", type=page_ranges, metavar="PAGES", help='pages to print, e.g. "1-3, 5"'
    )
    pdf.add_argument(
        "--prefer-css-page-size",
        action="store_true",
        help="take the paper size from the page's CSS @page size",
    )
    pdf.add_argument(
        "--scale",
        type=scale,
        help=f"scale the rendering, {MIN_PDF_SCALE} to {MAX_PDF_SCALE} (default 1)",
    )


def _given(args: argparse.Namespace, flags: dict[str, str]) -> list[str]:
    return [flag for dest, flag in flags.items() if getattr(args, dest)]


def _refuse_others(flags: list[str], action: str, other: str) -> None:
    """A usage error naming `flags`, which only go with `action`, given with `other`."""
    if flags:
        verb = "goes" if len(flags) == 1 else "go"
        raise UsageError(f"{', '.join(flags)} only {verb} with {action}, not with {other}")


def set_action(spec: tasks_pb2.TaskSpec, args: argparse.Namespace) -> None:
    """Sets the spec's action the flags name (none if no flag names one), with its options."""
    shot_flags = _given(args, SCREENSHOT_FLAGS)
    pdf_flags = _given(args, PDF_FLAGS)
    if args.content:
        _refuse_others(shot_flags, "--screenshot", "--content")
        _refuse_others(pdf_flags, "--pdf", "--content")
        spec.content.format = CONTENT_FORMATS[args.content]
    elif args.pdf or (pdf_flags and not args.screenshot and not shot_flags):
        _refuse_others(shot_flags, "--screenshot", "--pdf")
        _set_pdf(spec.pdf, args)
    else:
        _refuse_others(pdf_flags, "--pdf", "--screenshot")
        if args.screenshot or shot_flags:
            _set_screenshot(spec.screenshot, args)
    if args.mask and not args.compare:
        raise UsageError("--mask only goes with --compare")


def _set_screenshot(screenshot: tasks_pb2.ScreenshotOptions, args: argparse.Namespace) -> None:
    screenshot.SetInParent()
    screenshot.full_page = args.full_page
    if args.image_format:
        screenshot.format = IMAGE_FORMATS[args.image_format]
    if args.quality is not None:
        if args.image_format != "jpeg":
            raise UsageError("--quality only goes with --format jpeg")
        screenshot.quality = args.quality
    if args.selector:
        screenshot.selector = args.selector
    if args.omit_background:
        if args.image_format == "jpeg":
            raise UsageError("--omit-background only goes with PNG, not --format jpeg")
        screenshot.omit_background = True
    if args.clip:
        if args.selector:
            raise UsageError("--clip does not go with --selector")
        x, y, width, height = args.clip
        screenshot.clip.CopyFrom(tasks_pb2.ScreenshotClip(x=x, y=y, width=width, height=height))
    if args.compare:
        if args.image_format == "jpeg":
            raise UsageError("--compare compares PNG screenshots only, not --format jpeg")
        if len(args.mask) > MAX_COMPARE_MASKS:
            raise UsageError(
                f"--mask must be given at most {MAX_COMPARE_MASKS} times, got {len(args.mask)}"
            )
        screenshot.compare.baseline = args.compare
        screenshot.compare.mask.extend(args.mask)


def _set_pdf(pdf: tasks_pb2.PdfOptions, args: argparse.Namespace) -> None:
    pdf.SetInParent()
    if args.paper_format:
        pdf.paper_format = args.paper_format
    pdf.landscape = args.landscape
    pdf.print_background = args.print_background
    if args.margin:
        top, right, bottom, left = args.margin
        pdf.margin.CopyFrom(tasks_pb2.PdfMargin(top=top, right=right, bottom=bottom, left=left))
    if args.page_ranges:
        pdf.page_ranges = args.page_ranges
    pdf.prefer_css_page_size = args.prefer_css_page_size
    if args.scale:
        pdf.scale = args.scale
