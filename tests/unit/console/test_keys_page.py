"""The Keys & tenant page: every limit in force is shown, 0 as unlimited."""

import re
from collections.abc import Iterator
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
    """WhoAmI, GetTenant and ListApiKeys (`listed`, else none) of one admin key of `acme`."""

    def __init__(self, listed: list[dict[str, Any]] | None = None) -> None:
        self.auth = self
        self.WhoAmI, self.GetTenant, self.ListApiKeys = "whoami", "tenant", "keys"
        self.listed = listed or []

    async def call(self, key: str, method: str, request: Any) -> dict[str, Any]:
        replies: dict[str, dict[str, Any]] = {
            "whoami": {"tenant": "acme", "scopes": ["admin"], "keyId": "key1"},
            "tenant": TENANT,
            "keys": {"apiKeys": self.listed},
        }
        return replies[method]


def keys_page(farm: TenantFarm) -> Iterator[TestClient]:
    """A signed-in client of the keys page on `farm`."""
    app = Starlette(
        routes=[Mount(PREFIX, routes=keys.routes)],
        exception_handlers={NotSignedIn: not_signed_in, FarmError: farm_refused},
    )
    app.state.farm = farm
    app.state.settings = ConsoleSettings()
    app.state.refused_keys = refused_keys(app.state.settings)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.cookies.set(KEY_COOKIE, "bf_key")
        yield client


def test_each_limit_is_shown_and_an_unlimited_one_says_so() -> None:
    for client in keys_page(TenantFarm()):
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


def test_an_expired_key_is_marked_expired() -> None:
    # It looked like any working key but for a date in the past.
    listed = [
        {"id": "key_gone", "name": "gone", "expireTime": "2020-01-01T00:00:00.040909Z"},
        {"id": "key_later", "name": "later", "expireTime": "2999-01-01T00:00:00Z"},
        {"id": "key_forever", "name": "forever"},
    ]
    farm = TenantFarm(listed)
    for client in keys_page(farm):
        answer = client.get("/console/keys")

        assert answer.status_code == 200
        assert answer.text.count('<span class="bad">expired</span>') == 1
        assert '<td>2020-01-01T00:00:00.040909Z <span class="bad">expired</span></td>' in (
            answer.text
        )
