"""argparse types for number options: whole numbers that fit their proto field, seconds above 0."""

import argparse
from collections.abc import Callable

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def whole_number(most: int) -> Callable[[str], int]:
    """An argparse type: a whole number from 0 to `most`, else a usage error.

    Without it a value too big for the field crashes the CLI when the request is built;
    the farm still checks the narrower bounds each field has.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from error
        if not 0 <= value <= most:
            raise argparse.ArgumentTypeError(f"must be from 0 to {most}, got {value}")
        return value

    return parse


def positive_seconds(text: str) -> float:
    """An argparse type: a number of seconds above zero, else a usage error."""
    try:
        value = float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from error
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0 seconds, got {text}")
    return value
