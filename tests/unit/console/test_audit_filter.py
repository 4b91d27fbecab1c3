"""The audit log's filters: an outcome in any case, as `farm audit` takes it."""

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from farm_console.pages import audit
from tests.unit.console.listing_pages import ListingFarm, signed_in_client


@pytest.fixture
def farm() -> ListingFarm:
    return ListingFarm("audit", "ListAuditRecords", {"auditRecords": []})


@pytest.fixture
def client(farm: ListingFarm) -> Iterator[TestClient]:
    with signed_in_client(farm, audit.routes) as test_client:
        yield test_client


@pytest.mark.parametrize("typed", ["permission_denied", "Permission_Denied", " PERMISSION_DENIED "])
def test_an_outcome_is_taken_in_any_case(client: TestClient, farm: ListingFarm, typed: str) -> None:
    answer = client.get("/console/audit", params={"outcome": typed})

    assert answer.status_code == 200
    assert [request.outcome for request in farm.asked] == ["PERMISSION_DENIED"]
