"""The checks every part of a spec uses, and the limits several parts share.

Each error names the field as sent in JSON. docs/api.md "Input limits" lists every
MAX_/MIN_ constant of the scheduler's check modules (a test checks the two agree).
"""

import functools
from collections.abc import Hashable, Iterable
from typing import Protocol

from farm_core.errors import InvalidArgument
from farm_core.task_limits import MAX_CACHE_TTL_SECONDS as MAX_CACHE_TTL_SECONDS
from farm_core.task_limits import MAX_TIMEOUT_MS as MAX_TIMEOUT_MS
from farm_core.task_limits import MIN_TIMEOUT_MS as MIN_TIMEOUT_MS
from farm_core.task_text import MAX_SELECTOR_CHARS as MAX_SELECTOR_CHARS
from farm_core.task_text import MAX_URL_CHARS as MAX_URL_CHARS
from farm_core.task_text import check_length as check_length
from farm_core.task_text import check_selector as check_selector
from farm_core.task_text import check_url as check_url

MAX_SCRIPT_CHARS = 100000


def check_required(field: str, value: str, most: int) -> None:
    """Raises InvalidArgument(field) when `value` is empty or longer than `most` characters."""
    if not value:
        raise InvalidArgument(field, "is required")
    check_length(field, value, most)


def check_script(field: str, source: str, *, required: bool = False) -> None:
    """Raises InvalidArgument(field) for a script that is too long, blank, or (if required) empty.

    Only spaces are no function: the page would run nothing and return null.
    """
    if required:
        check_required(field, source, MAX_SCRIPT_CHARS)
    check_length(field, source, MAX_SCRIPT_CHARS)
    if source and not source.strip():
        raise InvalidArgument(field, "must not be blank")


class ProtoEnum(Hashable, Protocol):
    """A generated protobuf enum (its class), which lists its numbers."""

    def values(self) -> Iterable[int]:
        """The enum's numbers."""
        ...


def check_enum(field: str, value: int, enum: ProtoEnum) -> None:
    """Raises InvalidArgument(field) unless `value` is one of `enum`'s numbers."""
    if value not in _numbers(enum):
        raise InvalidArgument(field, f"has no value {value}")


@functools.cache
def _numbers(enum: ProtoEnum) -> frozenset[int]:
    # An enum's numbers are fixed: found once, not listed on every create.
    return frozenset(enum.values())
