"""Page sizes and opaque page tokens for the List RPCs (newest first, keyset paging)."""

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from farm_core.errors import InvalidArgument

Row = TypeVar("Row")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int, field: str = "page_size") -> int:
    """The page size to use for `requested` (0 means the default)."""
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise InvalidArgument(field, f"must be between 0 and {MAX_PAGE_SIZE}, got {requested}")
    return requested or DEFAULT_PAGE_SIZE


@dataclass(frozen=True)
class Cursor:
    """The last row of a page: the next page starts after it."""

    create_time: dt.datetime
    object_id: str


def encode_cursor(cursor: Cursor) -> str:
    """An opaque token for `cursor`."""
    raw = json.dumps({"t": cursor.create_time.isoformat(), "id": cursor.object_id})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str, field: str = "page_token") -> Cursor | None:
    """The cursor in `token`, None for an empty token; InvalidArgument if it is not ours."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        fields = json.loads(raw)
        return Cursor(dt.datetime.fromisoformat(fields["t"]), str(fields["id"]))
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise InvalidArgument(field, "is not a token returned by this API") from error


def split_page(
    rows: Sequence[Row], size: int, cursor_of: Callable[[Row], Cursor]
) -> tuple[list[Row], str]:
    """The first `size` rows and the token of the next page ("" if none).

    Fetch `size + 1` rows: the extra one only tells whether another page follows.
    """
    page = list(rows[:size])
    more = len(rows) > size and bool(page)
    return page, encode_cursor(cursor_of(page[-1])) if more else ""
