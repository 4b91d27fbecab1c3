"""The Keys & tenant page: every limit in force is shown, 0 as unlimited."""

import re
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from farm_console.farm import FarmError
from farm_console.pages import keys
from farm_console.refusals import refused_keys
from farm_console.settings import ConsoleSettings
from farm_console.views import KEY_COOKIE, PREFIX, NotSignedIn, farm_refused, not_signed_in

# The JSON GetTenant gives: proto3 leaves the 0 (unlimited) maxRunningTasks out.
TENANT = {
    "name": "acme",
    "effectiveLimits": {
        "maxQueuedTasks": "10000",
        "maxArtifactBytes": "10737418240",
        "maxOpenSessions": "20",
    },
}


class TenantFarm:
    """WhoAmI, GetTenant and ListApiKeys of one admin key of `acme`."""

    def __init__(self) -> None:
        self.auth = self
        self.WhoAmI, self.GetTenant, self.ListApiKeys = "whoami", "tenant", "keys"

    async def call(self, key: str, method: str, request: Any) -> dict[str, Any]:
        replies: dict[str, dict[str, Any]] = {
            "whoami": {"tenant": "acme", "scopes": ["admin"], "keyId": "key1"},
            "tenant": TENANT,
            "keys": {"apiKeys": []},
        }
        return replies[method]


def test_each_limit_is_shown_and_an_unlimited_one_says_so() -> None:
    app = Starlette(
        routes=[Mount(PREFIX, routes=keys.routes)],
        exception_handlers={NotSignedIn: not_signed_in, FarmError: farm_refused},
    )
    app.state.farm = TenantFarm()
    app.state.settings = ConsoleSettings()
    app.state.refused_keys = refused_keys(app.state.settings)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.cookies.set(KEY_COOKIE, "bf_key")
        answer = client.get("/console/keys")

    assert answer.status_code == 200
    limits = re.search(r'<dl id="tenant-limits">(.*?)</dl>', answer.text, re.S)
    assert limits is not None
    assert re.findall(r"<dt>(\w+)</dt><dd>([^<]*)</dd>", limits.group(1)) == [
        ("maxQueuedTasks", "10000"),
        ("maxRunningTasks", "unlimited"),
        ("maxArtifactBytes", "10737418240"),
        ("maxOpenSessions", "20"),
    ]
