"""`farm tenant`, `farm key rotate|rate` and `farm audit` against the real farm, as an operator
and as the callers they must refuse."""

import datetime as dt
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from farm.auth.v1 import auth_pb2
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import (
    KeyFactory,
    at_once,
    farm_command,
    farm_json,
    http_client,
    new_tenant,
    printed,
    refused,
    side_by_side,
)
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

BOOTSTRAP_TENANT = "default"

Record = dict[str, Any]


@pytest.fixture(scope="module")
def operator(make_key: KeyFactory) -> auth_pb2.CreateApiKeyResponse:
    """A fresh admin key of the bootstrap tenant, so no other test spends its rate."""
    return make_key("admin")


def set_limits(farm: LocalFarm, tenant: str, *options: str, key: str) -> Any:
    """`farm tenant limits TENANT OPTIONS` with `key`; the tenant it printed."""
    return farm_json(farm, "tenant", "limits", tenant, *options, key=key)


def set_rate(farm: LocalFarm, key_id: str, *options: str, key: str) -> Any:
    """`farm key rate KEY_ID OPTIONS` with `key`; the API key it printed."""
    return farm_json(farm, "key", "rate", key_id, *options, key=key)


def audited(
    farm: LocalFarm,
    key: str,
    *filters: str,
    found: Callable[[list[Record]], bool],
    within: float = 20.0,
) -> list[Record]:
    """`farm audit FILTERS` until `found` holds for what it prints (records arrive async)."""
    seen: list[Record] = []

    def listed() -> list[Record] | None:
        seen[:] = farm_json(farm, "audit", *filters, key=key)["auditRecords"]
        return list(seen) if found(seen) else None

    return eventually(
        listed,
        within=within,
        interval=0.2,
        message=lambda: f"`farm audit {' '.join(filters)}` still lacks the records: {seen}",
    )


def test_an_operator_sets_a_tenants_quotas_and_get_and_whoami_show_them(
    farm: LocalFarm, operator: auth_pb2.CreateApiKeyResponse, make_key: KeyFactory
) -> None:
    tenant = new_tenant("cli")
    member = make_key("tasks.read", tenant=tenant)
    defaults = farm_json(farm, "tenant", "get", tenant, key=operator.secret)
    default_limits = defaults["effectiveLimits"]

    limited = set_limits(
        farm,
        tenant,
        "--max-queued-tasks",
        "3",
        "--max-running-tasks",
        "2",
        "--max-open-sessions",
        "1",
        key=operator.secret,
    )
    got, me = side_by_side(
        farm, (operator.secret, ("tenant", "get", tenant)), (member.secret, ("whoami",))
    )

    in_force = {
        **default_limits,
        "maxQueuedTasks": "3",
        "maxRunningTasks": "2",
        "maxOpenSessions": "1",
    }
    assert limited["name"] == tenant
    assert limited["limits"] == {
        "maxQueuedTasks": "3",
        "maxRunningTasks": "2",
        "maxArtifactBytes": "0",
        "maxOpenSessions": "1",
    }
    assert limited["effectiveLimits"] == in_force
    assert int(in_force["maxArtifactBytes"]) > 0  # the farm's default
    assert printed(got) == limited
    assert printed(me)["tenant"] == tenant
    assert printed(me)["tenantLimits"] == in_force


def test_a_quota_set_to_0_returns_to_the_default_and_the_others_stay(
    farm: LocalFarm, operator: auth_pb2.CreateApiKeyResponse
) -> None:
    tenant = new_tenant("cli")
    first = set_limits(
        farm, tenant, "--max-queued-tasks", "3", "--max-artifact-bytes", "4096", key=operator.secret
    )

    reset = set_limits(farm, tenant, "--max-queued-tasks", "0", key=operator.secret)

    assert reset["createTime"] == first["createTime"]  # one tenant, made by the first call
    assert reset["limits"] == {
        "maxQueuedTasks": "0",
        "maxRunningTasks": "0",
        "maxArtifactBytes": "4096",
        "maxOpenSessions": "0",
    }
    assert int(reset["effectiveLimits"]["maxQueuedTasks"]) > 3
    assert reset["effectiveLimits"]["maxArtifactBytes"] == "4096"


def test_a_tenant_admin_reads_its_tenant_but_is_refused_quotas_rates_and_others(
    farm: LocalFarm, make_key: KeyFactory
) -> None:
    tenant = new_tenant("cli")
    tenant_admin = make_key("admin", tenant=tenant)

    raised, faster, own, other, others_audit = at_once(
        farm,
        ("tenant", "limits", tenant, "--max-queued-tasks", "1000000"),
        ("key", "rate", tenant_admin.api_key.id, "--burst", "1000"),
        ("tenant", "get", tenant),
        ("tenant", "get", BOOTSTRAP_TENANT),
        ("audit", "--tenant", BOOTSTRAP_TENANT),
        key=tenant_admin.secret,
    )

    assert refused(raised) == (
        "error: PERMISSION_DENIED: only an admin of the bootstrap tenant "
        f"{BOOTSTRAP_TENANT!r} may change a tenant's quotas"
    )
    assert refused(faster) == (
        "error: PERMISSION_DENIED: only an admin of the bootstrap tenant "
        f"{BOOTSTRAP_TENANT!r} may change a key's rate limit"
    )
    assert printed(own)["name"] == tenant
    assert printed(own)["limits"]["maxQueuedTasks"] == "0"  # unchanged
    assert refused(other).startswith("error: NOT_FOUND: ")
    assert refused(others_audit).startswith("error: PERMISSION_DENIED: tenant: ")


def test_a_key_without_the_admin_scope_is_refused_every_admin_command(
    farm: LocalFarm, make_key: KeyFactory
) -> None:
    reader = make_key("tasks.read", tenant=new_tenant("cli"))
    key_id = reader.api_key.id

    results = at_once(
        farm,
        ("key", "rotate", key_id),
        ("key", "rate", key_id, "--burst", "1000"),
        ("tenant", "limits", reader.api_key.tenant, "--max-queued-tasks", "1000000"),
        ("audit",),
        key=reader.secret,
    )
    me = farm_json(farm, "whoami", key=reader.secret)

    rpcs = [
        "/farm.auth.v1.AuthService/RotateApiKey",
        "/farm.auth.v1.AuthService/UpdateApiKey",
        "/farm.auth.v1.AuthService/UpdateTenantLimits",
        "/farm.audit.v1.AuditService/ListAuditRecords",
    ]
    assert [refused(result) for result in results] == [
        f"error: PERMISSION_DENIED: this API key lacks the scope 'admin' that {rpc} needs"
        for rpc in rpcs
    ]
    # Nothing changed: the same secret still works, at the farm's default rate.
    assert me["keyId"] == key_id
    assert int(me["rateLimit"]["burst"]) < 1000


def key_in_cache(farm: LocalFarm, make_key: KeyFactory) -> auth_pb2.CreateApiKeyResponse:
    """A new tasks.read key that auth has checked once, so it is in auth's key cache."""
    key = make_key("tasks.read")
    farm_json(farm, "whoami", key=key.secret)
    return key


def test_key_rotate_prints_a_new_secret_and_the_old_one_works_until_the_grace_ends(
    farm: LocalFarm, operator: auth_pb2.CreateApiKeyResponse, make_key: KeyFactory
) -> None:
    key = key_in_cache(farm, make_key)

    result = farm_command(
        farm, "key", "rotate", key.api_key.id, "--grace-seconds", "2", key=operator.secret
    )
    rotated = printed(result)
    grace_end = dt.datetime.fromisoformat(rotated["apiKey"]["previousSecretExpireTime"])
    new_secret = rotated["secret"]
    # Over HTTP, not the CLI: a CLI run takes about 1 s to start, half the grace.
    with http_client(farm, new_secret) as new, http_client(farm, key.secret) as old:
        new_status = new.get("/v1/whoami").status_code
        old_status = old.get("/v1/whoami").status_code
        assert dt.datetime.now(dt.UTC) < grace_end, "too slow to see the grace period"
        late_by = (grace_end - dt.datetime.now(dt.UTC)).total_seconds() + 1
        eventually(
            lambda: old.get("/v1/whoami").status_code != 200,
            within=late_by,
            message="old secret still accepted 1 s after its grace",
        )
        refused_at = dt.datetime.now(dt.UTC)
    late, as_new = side_by_side(farm, (key.secret, ("whoami",)), (new_secret, ("whoami",)))

    assert new_secret.startswith("bf_") and new_secret != key.secret
    assert rotated["apiKey"]["id"] == key.api_key.id
    assert new_secret in result.stderr and "NEVER shown again" in result.stderr
    assert (new_status, old_status) == (200, 200)
    assert refused_at >= grace_end
    assert refused(late) == (
        "error: UNAUTHENTICATED: API key rotated: this old secret's grace period is over; "
        "use the new secret"
    )
    assert printed(as_new)["keyId"] == key.api_key.id


def test_key_rotate_without_grace_refuses_the_old_secret_at_once(
    farm: LocalFarm, operator: auth_pb2.CreateApiKeyResponse, make_key: KeyFactory
) -> None:
    key = key_in_cache(farm, make_key)

    rotated = farm_json(
        farm, "key", "rotate", key.api_key.id, "--grace-seconds", "0", key=operator.secret
    )
    as_old, as_new = side_by_side(farm, (key.secret, ("whoami",)), (rotated["secret"], ("whoami",)))

    assert refused(as_old).startswith("error: UNAUTHENTICATED: API key rotated: ")
    assert printed(as_new)["keyId"] == key.api_key.id


def test_key_rate_sets_the_rate_whoami_shows_it_and_the_burst_is_enforced(
    farm: LocalFarm, operator: auth_pb2.CreateApiKeyResponse, make_key: KeyFactory
) -> None:
    key = make_key("tasks.read")
    key_id = key.api_key.id

    rated = set_rate(farm, key_id, "--per-second", "1", "--burst", "2", key=operator.secret)
    me = farm_json(farm, "whoami", key=key.secret)  # takes one of the 2 tokens
    with http_client(farm, key.secret) as http:
        statuses = [http.get("/v1/whoami").status_code for _ in range(3)]

    assert rated["id"] == key_id
    assert rated["rateLimit"] == rated["effectiveRateLimit"] == {"perSecond": 1, "burst": 2}
    assert me["rateLimit"] == {"perSecond": 1, "burst": 2}
    assert statuses[0] == 200 and 429 in statuses, statuses


def test_key_rate_changes_only_the_fields_given_and_0_returns_to_the_default(
    farm: LocalFarm, operator: auth_pb2.CreateApiKeyResponse, make_key: KeyFactory
) -> None:
    key_id = make_key("tasks.read").api_key.id
    default = set_rate(farm, key_id, key=operator.secret)

    set_rate(farm, key_id, "--per-second", "3", "--burst", "4", key=operator.secret)
    burst_only = set_rate(farm, key_id, "--burst", "9", key=operator.secret)
    reset = set_rate(farm, key_id, "--per-second", "0", "--burst", "0", key=operator.secret)

    assert default["rateLimit"] == {"perSecond": 0, "burst": 0}
    assert burst_only["rateLimit"] == {"perSecond": 3, "burst": 9}
    assert burst_only["effectiveRateLimit"] == burst_only["rateLimit"]
    assert reset["rateLimit"] == {"perSecond": 0, "burst": 0}
    assert reset["effectiveRateLimit"] == default["effectiveRateLimit"]


def test_rotating_or_rating_an_unknown_key_names_it(
    farm: LocalFarm, operator: auth_pb2.CreateApiKeyResponse
) -> None:
    unknown = f"key_{secrets.token_hex(8)}"

    rotate, rate = at_once(
        farm,
        ("key", "rotate", unknown),
        ("key", "rate", unknown, "--burst", "5"),
        key=operator.secret,
    )

    assert refused(rotate).startswith("error: NOT_FOUND: ")
    assert unknown in rotate.stderr
    assert refused(rate).startswith("error: NOT_FOUND: ")
    assert unknown in rate.stderr


def test_audit_lists_the_records_of_the_admin_commands(
    farm: LocalFarm, operator: auth_pb2.CreateApiKeyResponse, make_key: KeyFactory
) -> None:
    tenant = new_tenant("cli")
    tenant_admin = make_key("admin", tenant=tenant)
    key_id = tenant_admin.api_key.id
    set_limits(farm, tenant, "--max-running-tasks", "5", key=operator.secret)
    set_rate(farm, key_id, "--burst", "20", key=operator.secret)
    rotated = farm_json(farm, "key", "rotate", key_id, "--grace-seconds", "60", key=operator.secret)
    refused(
        farm_command(
            farm, "tenant", "limits", tenant, "--max-running-tasks", "500", key=rotated["secret"]
        )
    )
    refused(farm_command(farm, "key", "rate", key_id, "--burst", "500", key=rotated["secret"]))

    def by_operator(records: list[Record]) -> list[Record]:
        return [
            r
            for r in records
            if r["keyId"] == operator.api_key.id and r["target"] in (tenant, key_id)
        ]

    operators = audited(
        farm,
        operator.secret,
        "--tenant",
        BOOTSTRAP_TENANT,
        "--since",
        "10m",
        "--limit",
        "1000",
        found=lambda records: len(by_operator(records)) >= 3,
    )
    # A tenant's admin reads its own tenant's records, here with its rotated secret.
    tenants = audited(
        farm,
        rotated["secret"],
        "--tenant",
        tenant,
        "--outcome",
        "permission_denied",
        found=lambda records: len(records) >= 2,
    )
    newest, own_ok = at_once(
        farm,
        ("audit", "--tenant", tenant, "--limit", "1"),
        ("audit", "--tenant", tenant, "--rpc", "UpdateTenantLimits", "--outcome", "ok"),
        key=operator.secret,
    )
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    rotations, none_yet = at_once(
        farm,
        ("audit", "--rpc", "RotateApiKey", "--since", "10m"),
        ("audit", "--tenant", tenant, "--since", future),
        key=operator.secret,
    )

    auth = "/farm.auth.v1.AuthService/"
    assert sorted(
        (r["rpc"], r["target"], r["outcome"], r["keyId"], r["source"])
        for r in by_operator(operators)
    ) == [
        (f"{auth}RotateApiKey", key_id, "OK", operator.api_key.id, "auth"),
        (f"{auth}UpdateApiKey", key_id, "OK", operator.api_key.id, "auth"),
        (f"{auth}UpdateTenantLimits", tenant, "OK", operator.api_key.id, "auth"),
    ]
    assert [(r["rpc"], r["keyId"]) for r in tenants] == [
        (f"{auth}UpdateApiKey", key_id),  # newest first
        (f"{auth}UpdateTenantLimits", key_id),
    ]
    assert all("only an admin of the bootstrap tenant" in r["message"] for r in tenants)
    newest_page = printed(newest)
    assert [r["id"] for r in newest_page["auditRecords"]] == [tenants[0]["id"]]
    assert newest_page["nextPageToken"]
    (next_one,) = at_once(
        farm,
        ("audit", "--tenant", tenant, "--limit", "1", "--page-token", newest_page["nextPageToken"]),
        key=operator.secret,
    )
    assert [r["id"] for r in printed(next_one)["auditRecords"]] == [tenants[1]["id"]]
    assert printed(own_ok)["auditRecords"] == []  # its own calls were all refused
    rotated_targets = [r["target"] for r in printed(rotations)["auditRecords"]]
    assert key_id in rotated_targets
    assert all(r["rpc"].endswith("/RotateApiKey") for r in printed(rotations)["auditRecords"])
    assert printed(none_yet)["auditRecords"] == []


def test_audit_names_a_bad_limit_since_or_outcome(
    farm: LocalFarm, operator: auth_pb2.CreateApiKeyResponse
) -> None:
    no_limit, bad_since, bad_outcome = at_once(
        farm,
        ("audit", "--limit", "0"),
        ("audit", "--since", "yesterday"),
        ("audit", "--outcome", "nope"),
        key=operator.secret,
    )

    assert refused(no_limit) == "error: --limit: must be at least 1"
    assert refused(bad_since) == "error: --since: not a time or an age like \"2h\": 'yesterday'"
    assert refused(bad_outcome).startswith("error: INVALID_ARGUMENT: outcome: ")
