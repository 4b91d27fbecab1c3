"""Paging for the List RPCs (newest first, keyset paging): page sizes, opaque page tokens.

A List handler calls `read_page` with the request and how to read its rows; the rest
(the size check, the token's cursor, the one row too many, the next token) is here.
"""

import base64
import binascii
import datetime as dt
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from farm_core.errors import InvalidArgument
from farm_core.request_text import NUL

Row = TypeVar("Row")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int) -> int:
    """The page size to use for `requested` (0 means the default); a bad one names pageSize."""
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise InvalidArgument("pageSize", f"must be between 0 and {MAX_PAGE_SIZE}, got {requested}")
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


def decode_cursor(token: str) -> Cursor | None:
    """The cursor in `token`, None for an empty token; InvalidArgument (pageToken) if not ours."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        fields = json.loads(raw)
        created = dt.datetime.fromisoformat(fields["t"])
        if created.tzinfo is None:
            # Every token of ours names its time's offset; the database takes no other.
            raise ValueError("a page token's time without an offset")
        object_id = fields["id"]
        if not isinstance(object_id, str) or NUL in object_id:
            # Every token of ours names a text id; PostgreSQL cannot compare one with a NUL.
            raise ValueError("a page token's id that is not one of ours")
        # In UTC here, so that a time near the calendar's ends fails now, not in the query.
        return Cursor(created.astimezone(dt.UTC), object_id)
    except (binascii.Error, ValueError, KeyError, TypeError, OverflowError) as error:
        raise InvalidArgument("pageToken", "is not a token returned by this API") from error


def split_page(
    rows: Sequence[Row], size: int, cursor_of: Callable[[Row], Cursor]
) -> tuple[list[Row], str]:
    """The first `size` rows and the token of the next page ("" if none).

    Fetch `size + 1` rows: the extra one only tells whether another page follows.
    """
    page = list(rows[:size])
    more = len(rows) > size and bool(page)
    return page, encode_cursor(cursor_of(page[-1])) if more else ""


class PageRequest(Protocol):
    """What a List request says about its page."""

    @property
    def page_size(self) -> int:
        """How many rows the page may hold; 0 means the default."""
        ...

    @property
    def page_token(self) -> str:
        """The next_page_token of the page before, or "" for the first page."""
        ...


async def read_page(
    request: PageRequest,
    fetch: Callable[[int, Cursor | None], Awaitable[Sequence[Row]]],
    cursor_of: Callable[[Row], Cursor],
) -> tuple[list[Row], str]:
    """The page `request` asks for, and the token of the next page ("" if none).

    `fetch(limit, after)` reads up to `limit` rows following the cursor `after` (None:
    from the first), in the List's order; `cursor_of` is a row's cursor. A bad size or
    token is an InvalidArgument naming its JSON field (pageSize, pageToken).
    """
    size = page_size(request.page_size)
    after = decode_cursor(request.page_token)
    return split_page(await fetch(size + 1, after), size, cursor_of)
