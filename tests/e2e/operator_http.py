"""An operator's changes to a key's rate and a tenant's quotas, over HTTP/JSON through Envoy."""

from typing import Any

from tests.e2e.conftest import Client


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
