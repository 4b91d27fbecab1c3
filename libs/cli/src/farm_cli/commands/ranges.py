"""argparse types for number options: whole numbers fitting their proto field, seconds, above 0."""

import argparse
import math
import re
from collections.abc import Callable

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
MAX_PAGE_SIZE = 1000
"""The farm's largest page (farm_core.paging's; stated here so `farm --help` loads no grpc)."""
MAX_CONCURRENCY = 64
"""The most calls or tasks at once a command's --concurrency may ask for."""
WHOLE_NUMBER = re.compile(r"-?[0-9]+")


def whole_number(most: int, least: int = 0) -> Callable[[str], int]:
    """An argparse type: a whole number from `least` (0 unless given) to `most`, else a usage error.

    Without it a value too big for the field crashes the CLI when the request is built;
    the farm still checks the narrower bounds each field has.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from error
        if not least <= value <= most:
            raise argparse.ArgumentTypeError(f"must be from {least} to {most}, got {value}")
        return value

    return parse


def whole_number_in(least: int, most: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `least` to `most`, else a usage error naming the range.

    For an option whose range is its own (not its field's): a word is refused with the
    same message as a number outside, so either way the caller reads what to give.
    """

    def parse(text: str) -> int:
        if not WHOLE_NUMBER.fullmatch(text) or not least <= int(text) <= most:
            raise argparse.ArgumentTypeError(f"must be from {least} to {most}, got {text!r}")
        return int(text)

    return parse


def zero_or_whole_number_in(least: int, most: int) -> Callable[[str], int]:
    """An argparse type: 0 (the farm's default) or a whole number from `least` to `most`.

    For a field the farm reads 0 of as "the default", such as timeoutMs.
    """
    in_range = whole_number_in(least, most)

    def parse(text: str) -> int:
        if WHOLE_NUMBER.fullmatch(text) and int(text) == 0:
            return 0
        try:
            return in_range(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"must be 0 or from {least} to {most}, got {text!r}"
            ) from None

    return parse


def _number(text: str, what: str) -> float:
    """`text` as a number (a fraction too), else a usage error saying it is not `what`."""
    try:
        return float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from error


def seconds(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more (a fraction too), else a usage error."""
    value = _number(text, "a number of seconds")
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text!r}")
    return value


def positive_number(text: str) -> float:
    """An argparse type: a finite number above 0 (a fraction too), else a usage error."""
    value = _number(text, "a number")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return value


def percent(text: str) -> float:
    """An argparse type: a percentage above 0 and at most 100, else a usage error."""
    value = positive_number(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 100, got {text!r}")
    return value


def add_page_arguments(parser: argparse.ArgumentParser, *, every_page: bool = True) -> None:
    """A List command's --page-size and --page-token (and --all unless `every_page` is False)."""
    parser.add_argument(
        "--page-size",
        type=whole_number(MAX_PAGE_SIZE),
        default=0,
        help=f"at most this many a page, up to {MAX_PAGE_SIZE} (0: the farm's default)",
    )
    parser.add_argument(
        "--page-token",
        default="",
        help="go on from the nextPageToken an earlier listing printed",
    )
    if every_page:
        parser.add_argument("--all", action="store_true", help="follow every page")
