"""Following a List RPC's page tokens to the end."""

from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.message import Message

from farm_cli.console import CliError

Response = TypeVar("Response", bound=Message)


def every_page(
    call: Callable[[Any], Response],
    request: Any,
    items: str,
    *,
    limit: int = 0,
    page_size: int = 0,
) -> Response:
    """Calls `call` page after page; returns one response whose `items` field holds them all.

    With `limit`, stops once that many are in hand, asking each page (of at most
    `page_size`) for no more than are still wanted, and keeps the last page's
    next_page_token to go on from.
    """
    everything: Response | None = None
    seen_tokens: set[str] = set()
    while True:
        if limit:
            have = len(getattr(everything, items)) if everything is not None else 0
            request.page_size = min(limit - have, page_size) if page_size else limit - have
        page = call(request)
        if everything is None:
            everything = type(page)()
        getattr(everything, items).extend(getattr(page, items))
        token: str = page.next_page_token  # type: ignore[attr-defined]
        if not token or (limit and len(getattr(everything, items)) >= limit):
            if limit:
                everything.next_page_token = token  # type: ignore[attr-defined]
            return everything
        if token in seen_tokens:
            raise CliError("the farm returned the same page token twice")
        seen_tokens.add(token)
        request.page_token = token
