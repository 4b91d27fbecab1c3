"""A console app of the task and key pages in front of a farm that refuses every create."""

from collections.abc import Iterator
from typing import Any

import grpc
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from farm_console.farm import FarmError
from farm_console.pages import keys, tasks
from farm_console.refusals import refused_keys
from farm_console.settings import ConsoleSettings
from farm_console.views import KEY_COOKIE, PREFIX, NotSignedIn, farm_refused, not_signed_in

KEY = "bf_key"


class RefusingFarm:
    """A farm whose creates are refused with `code`; its lists are empty."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code
        self.created: list[Any] = []
        self.tasks = self.auth = self
        self.CreateTask = self.CreateApiKey = "create"
        self.ListTasks = self.ListApiKeys = self.WhoAmI = self.GetTenant = "read"

    async def call(self, key: str, method: str, request: Any) -> dict[str, Any]:
        if method == "create":
            self.created.append(request)
            raise FarmError(self.code, "refused by the farm")
        return {"tenant": "acme", "scopes": ["admin"]}


def console(farm: RefusingFarm) -> Iterator[TestClient]:
    """The console's task and key pages, calling `farm`."""
    app = Starlette(
        routes=[Mount(PREFIX, routes=[*tasks.routes, *keys.routes])],
        exception_handlers={NotSignedIn: not_signed_in, FarmError: farm_refused},
    )
    app.state.farm = farm
    app.state.settings = ConsoleSettings()
    app.state.refused_keys = refused_keys(app.state.settings)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.cookies.set(KEY_COOKIE, KEY)
        yield client
