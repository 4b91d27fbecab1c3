"""The audit log's filters: an outcome in any case, as `farm audit` takes it."""

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from farm.audit.v1 import audit_pb2
from farm_console.farm import FarmError
from farm_console.pages import audit
from farm_console.refusals import refused_keys
from farm_console.settings import ConsoleSettings
from farm_console.views import KEY_COOKIE, PREFIX, NotSignedIn, farm_refused, not_signed_in


class AuditFarm:
    """A farm whose audit log is empty; it keeps each ListAuditRecords request."""

    def __init__(self) -> None:
        self.audit = self
        self.ListAuditRecords = "list"
        self.asked: list[audit_pb2.ListAuditRecordsRequest] = []

    async def call(self, key: str, method: str, request: Any) -> dict[str, Any]:
        self.asked.append(request)
        return {"auditRecords": []}


@pytest.fixture
def farm() -> AuditFarm:
    return AuditFarm()


@pytest.fixture
def client(farm: AuditFarm) -> Iterator[TestClient]:
    app = Starlette(
        routes=[Mount(PREFIX, routes=audit.routes)],
        exception_handlers={NotSignedIn: not_signed_in, FarmError: farm_refused},
    )
    app.state.farm = farm
    app.state.settings = ConsoleSettings()
    app.state.refused_keys = refused_keys(app.state.settings)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        test_client.cookies.set(KEY_COOKIE, "bf_key")
        yield test_client


@pytest.mark.parametrize("typed", ["permission_denied", "Permission_Denied", " PERMISSION_DENIED "])
def test_an_outcome_is_taken_in_any_case(client: TestClient, farm: AuditFarm, typed: str) -> None:
    answer = client.get("/console/audit", params={"outcome": typed})

    assert answer.status_code == 200
    assert [request.outcome for request in farm.asked] == ["PERMISSION_DENIED"]
