"""A console page under test, in front of a farm that lists nothing and keeps what it was asked."""

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount
from starlette.testclient import TestClient

from farm_console.farm import FarmError
from farm_console.refusals import refused_keys
from farm_console.settings import ConsoleSettings
from farm_console.views import KEY_COOKIE, PREFIX, NotSignedIn, farm_refused, not_signed_in


class ListingFarm:
    """A farm with one List method (`service`.`method`) answering `reply`; it keeps each request.

    With `refusal`, each call is refused with it instead (after it is kept).
    """

    def __init__(
        self,
        service: str,
        method: str,
        reply: dict[str, Any],
        refusal: FarmError | None = None,
    ) -> None:
        setattr(self, service, self)
        setattr(self, method, method)
        self._reply = reply
        self._refusal = refusal
        self.asked: list[Any] = []

    async def call(self, key: str, method: str, request: Any) -> dict[str, Any]:
        self.asked.append(request)
        if self._refusal is not None:
            raise self._refusal
        return self._reply


@contextlib.contextmanager
def signed_in_client(farm: ListingFarm, routes: Sequence[BaseRoute]) -> Iterator[TestClient]:
    """A client of a console app of `routes` in front of `farm`, signed in with a key."""
    app = Starlette(
        routes=[Mount(PREFIX, routes=list(routes))],
        exception_handlers={NotSignedIn: not_signed_in, FarmError: farm_refused},
    )
    app.state.farm = farm
    app.state.settings = ConsoleSettings()
    app.state.refused_keys = refused_keys(app.state.settings)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        test_client.cookies.set(KEY_COOKIE, "bf_key")
        yield test_client
