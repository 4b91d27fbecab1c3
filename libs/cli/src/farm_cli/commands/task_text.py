"""argparse types for a task's text options, checked with the scheduler's own rules.

The rules are `farm_core`'s (task_text, saved, idempotency), which the scheduler
checks too, so a value the farm would refuse is a usage error naming the option,
in the scheduler's words, before anything is sent.
"""

import argparse
from collections.abc import Callable

from farm_cli.console import UsageError

# The rules are imported when a value is checked, not when the parser is built: they
# import the farm's error types, and with them grpc.


def _checked(check: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse type: the text if `check` takes it, else a usage error with its problem."""

    def parse(text: str) -> str:
        from farm_core.errors import InvalidArgument

        try:
            check(text)
        except InvalidArgument as error:
            raise argparse.ArgumentTypeError(error.problem) from None
        return text

    return parse


def _check_url(text: str) -> None:
    from farm_core.task_text import check_url

    check_url(text)


def _check_region(text: str) -> None:
    from farm_core.task_text import check_region

    check_region(text)


def _check_idempotency_key(text: str) -> None:
    from farm_core.idempotency import check_idempotency_key

    check_idempotency_key(text)


def _check_saved_name(text: str) -> None:
    from farm_core.saved import check_saved_name

    check_saved_name("name", text)


def _check_selector(text: str) -> None:
    from farm_core.task_text import check_selector

    check_selector("selector", text)


def _check_mask(text: str) -> None:
    from farm_core.task_text import check_selector

    check_selector("mask", text, required=True)


url = _checked(_check_url)
region = _checked(_check_region)
idempotency_key = _checked(_check_idempotency_key)
saved_name = _checked(_check_saved_name)
selector = _checked(_check_selector)
mask = _checked(_check_mask)


def _pair(text: str, check: Callable[[str, str], None]) -> tuple[str, str]:
    """A key=value pair that `check(key, value)` takes, else a usage error."""
    from farm_core.errors import InvalidArgument

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
    from farm_core.task_text import check_label

    return _pair(text, lambda key, value: check_label("labels", key, value))


def label_filter(text: str) -> tuple[str, str]:
    """An argparse type: a label filter key=value, its key a label key (the value any)."""
    from farm_core.task_text import check_label_key

    return _pair(text, lambda key, _value: check_label_key("label", key))


def labels_of(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The labels repeated --label options give; a usage error for more than the farm takes."""
    from farm_core.errors import InvalidArgument
    from farm_core.task_text import check_label_count

    labels = dict(pairs)
    for key, value in pairs:
        # dict() would keep the last value and drop the others without a word.
        if labels[key] != value:
            raise UsageError(
                f"argument --label: {key!r} is given twice, as {value!r} and {labels[key]!r}:"
                " a label has one value"
            )
    try:
        check_label_count("labels", len(labels))
    except InvalidArgument as error:
        raise UsageError(f"argument --label: {error.problem}") from None
    return labels
