"""An operator's changes to a key's rate and a tenant's quotas, and reads of the audit log,
over HTTP/JSON through Envoy."""

from typing import Any

from tests.e2e.conftest import Client
from tests.helpers import eventually


def set_rate(admin: Client, key_id: str, per_second: int, burst: int) -> None:
    """UpdateApiKey over HTTP/JSON, as an operator."""
    body = {"rateLimitPerSecond": per_second, "rateLimitBurst": burst}
    response = admin.http.patch(f"/v1/apiKeys/{key_id}", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["effectiveRateLimit"] == {"perSecond": per_second, "burst": burst}


def set_quotas(admin: Client, tenant: str, **quotas: int) -> dict[str, Any]:
    """UpdateTenantLimits over HTTP/JSON, as an operator."""
    response = admin.http.patch(f"/v1/tenants/{tenant}/limits", json=quotas)
    assert response.status_code == 200, response.text
    return dict(response.json())


def audit_records(
    admin: Client, trace: str, outcome: str, tenant: str = ""
) -> list[dict[str, Any]]:
    """The audit records with `outcome` of the calls in trace `trace`, once there are some.

    Read from the newest 1,000 with that outcome (of `tenant`'s calls, if given).
    """

    def records() -> list[dict[str, Any]]:
        params: dict[str, str | int] = {"pageSize": 1000, "outcome": outcome}
        if tenant:
            params["tenant"] = tenant
        response = admin.http.get("/v1/auditRecords", params=params)
        assert response.status_code == 200, response.text
        return [r for r in response.json()["auditRecords"] if r["traceId"] == trace]

    return eventually(
        records, within=20, interval=0.2, message=f"no {outcome} record of trace {trace}"
    )
