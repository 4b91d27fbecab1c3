"""argparse types for a task's text options, checked with the scheduler's own rules.

The rules are `farm_core`'s (task_text, saved, idempotency), which the scheduler
checks too, so a value the farm would refuse is a usage error naming the option,
in the scheduler's words, before anything is sent.
"""

import argparse
from collections.abc import Callable

from farm_cli.console import UsageError
from farm_core.errors import InvalidArgument
from farm_core.idempotency import check_idempotency_key
from farm_core.saved import check_saved_name
from farm_core.task_text import (
    check_label,
    check_label_count,
    check_label_key,
    check_region,
    check_selector,
    check_url,
)


def _checked(check: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse type: the text if `check` takes it, else a usage error with its problem."""

    def parse(text: str) -> str:
        try:
            check(text)
        except InvalidArgument as error:
            raise argparse.ArgumentTypeError(error.problem) from None
        return text

    return parse


url = _checked(check_url)
region = _checked(check_region)
idempotency_key = _checked(check_idempotency_key)
saved_name = _checked(lambda name: check_saved_name("name", name))
selector = _checked(lambda text: check_selector("selector", text))
mask = _checked(lambda text: check_selector("mask", text, required=True))


def _pair(text: str, check: Callable[[str, str], None]) -> tuple[str, str]:
    """A key=value pair that `check(key, value)` takes, else a usage error."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        check(key, value)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(error.problem) from None
    return key, value


def spec_label(text: str) -> tuple[str, str]:
    """An argparse type: a task's or session's label key=value, its key and value within limits."""
    return _pair(text, lambda key, value: check_label("labels", key, value))


def label_filter(text: str) -> tuple[str, str]:
    """An argparse type: a label filter key=value, its key a label key (the value any)."""
    return _pair(text, lambda key, _value: check_label_key("label", key))


def labels_of(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The labels repeated --label options give; a usage error for more than the farm takes."""
    labels = dict(pairs)
    try:
        check_label_count("labels", len(labels))
    except InvalidArgument as error:
        raise UsageError(f"argument --label: {error.problem}") from None
    return labels
