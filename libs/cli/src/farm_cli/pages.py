"""Following a List RPC's page tokens to the end."""

from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.message import Message

from farm_cli.console import CliError

Response = TypeVar("Response", bound=Message)


def every_page(call: Callable[[Any], Response], request: Any, items: str) -> Response:
    """Calls `call` page after page; returns one response whose `items` field holds them all."""
    page = call(request)
    everything = type(page)()
    getattr(everything, items).extend(getattr(page, items))
    seen_tokens: set[str] = set()
    while page.next_page_token:  # type: ignore[attr-defined]
        token: str = page.next_page_token  # type: ignore[attr-defined]
        if token in seen_tokens:
            raise CliError("the farm returned the same page token twice")
        seen_tokens.add(token)
        request.page_token = token
        page = call(request)
        getattr(everything, items).extend(getattr(page, items))
    return everything
