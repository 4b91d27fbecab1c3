"""The audit log's filter: a filter the farm refuses is shown at its field, the form kept."""

import grpc
import pytest

from farm_console.farm import FarmError
from farm_console.pages import audit
from tests.unit.console.listing_pages import ListingFarm, signed_in_client

OUTCOME_REFUSED = "outcome: must be OK or a gRPC status code name, got 'denied'"
TENANT_REFUSED = (
    "tenant: only an admin of the bootstrap tenant 'default' may read the audit records "
    "of another tenant than 'acme'"
)


@pytest.mark.parametrize(
    ("code", "message", "field", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, OUTCOME_REFUSED, "outcome", 400),
        (grpc.StatusCode.PERMISSION_DENIED, TENANT_REFUSED, "tenant", 403),
    ],
)
def test_a_refused_filter_is_shown_at_its_field_with_the_form_as_typed(
    code: grpc.StatusCode, message: str, field: str, status: int
) -> None:
    # The page used to be the refusal alone: no form to correct the filter in.
    farm = ListingFarm("audit", "ListAuditRecords", {}, refusal=FarmError(code, message))
    with signed_in_client(farm, audit.routes) as client:
        answer = client.get(
            "/console/audit", params={"tenant": "default", "rpc": "x", "outcome": "denied"}
        )

    assert answer.status_code == status
    shown = message.replace("'", "&#39;")
    assert f'<p class="error" role="alert" id="{field}-error">{shown}</p>' in answer.text
    assert f'aria-describedby="{field}-error"' in answer.text
    for name, value in (("tenant", "default"), ("rpc", "x"), ("outcome", "denied")):
        assert f'name="{name}" value="{value}"' in answer.text
    assert "No records: the farm refused the filter." in answer.text


def test_a_key_without_the_admin_scope_gets_the_refusal_page() -> None:
    refused = FarmError(
        grpc.StatusCode.PERMISSION_DENIED,
        "this API key lacks the scope 'admin' that /farm.audit.v1.AuditService/"
        "ListAuditRecords needs",
    )
    farm = ListingFarm("audit", "ListAuditRecords", {}, refusal=refused)
    with signed_in_client(farm, audit.routes) as client:
        answer = client.get("/console/audit")

    assert answer.status_code == 403
    assert "<code>PERMISSION_DENIED</code> this API key lacks the scope" in answer.text
    assert "audit-filter" not in answer.text
