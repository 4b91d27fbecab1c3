"""`farm tenant` and `farm key rotate|rate` against the real farm, as an operator and as the
callers they must refuse."""

import datetime as dt
import secrets
from typing import Any

import pytest

from farm.auth.v1 import auth_pb2
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.cli_calls import farm_in_process, in_turn, printed, refused, set_limits, set_rate
from tests.e2e.conftest import BOOTSTRAP_TENANT, KeyFactory, http_client, new_tenant
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

Record = dict[str, Any]


def test_an_operator_sets_a_tenants_quotas_and_get_and_whoami_show_them(
    farm: LocalFarm, operator: auth_pb2.CreateApiKeyResponse, make_key: KeyFactory
) -> None:
    tenant = new_tenant("cli")
    member = make_key("tasks.read", tenant=tenant)
    defaults = printed(farm_in_process(farm, "tenant", "get", tenant, key=operator.secret))
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
    got = farm_in_process(farm, "tenant", "get", tenant, key=operator.secret)
    me = farm_in_process(farm, "whoami", key=member.secret)

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

    raised, faster, own, other, others_audit = in_turn(
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

    results = in_turn(
        farm,
        ("key", "rotate", key_id),
        ("key", "rate", key_id, "--burst", "1000"),
        ("tenant", "limits", reader.api_key.tenant, "--max-queued-tasks", "1000000"),
        ("audit",),
        key=reader.secret,
    )
    me = printed(farm_in_process(farm, "whoami", key=reader.secret))

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
    printed(farm_in_process(farm, "whoami", key=key.secret))
    return key


def test_key_rotate_prints_a_new_secret_and_the_old_one_works_until_the_grace_ends(
    farm: LocalFarm, operator: auth_pb2.CreateApiKeyResponse, make_key: KeyFactory
) -> None:
    key = key_in_cache(farm, make_key)

    result = farm_in_process(
        farm, "key", "rotate", key.api_key.id, "--grace-seconds", "2", key=operator.secret
    )
    rotated = printed(result)
    grace_end = dt.datetime.fromisoformat(rotated["apiKey"]["previousSecretExpireTime"])
    new_secret = rotated["secret"]
    # Over HTTP, where each call is one request: the old secret is tried many times.
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
    late = farm_in_process(farm, "whoami", key=key.secret)
    as_new = farm_in_process(farm, "whoami", key=new_secret)

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

    rotated = printed(
        farm_in_process(
            farm, "key", "rotate", key.api_key.id, "--grace-seconds", "0", key=operator.secret
        )
    )
    as_old = farm_in_process(farm, "whoami", key=key.secret)
    as_new = farm_in_process(farm, "whoami", key=rotated["secret"])

    assert refused(as_old).startswith("error: UNAUTHENTICATED: API key rotated: ")
    assert printed(as_new)["keyId"] == key.api_key.id


def test_key_rate_sets_the_rate_whoami_shows_it_and_the_burst_is_enforced(
    farm: LocalFarm, operator: auth_pb2.CreateApiKeyResponse, make_key: KeyFactory
) -> None:
    key = make_key("tasks.read")
    key_id = key.api_key.id

    rated = set_rate(farm, key_id, "--per-second", "1", "--burst", "2", key=operator.secret)
    me = printed(farm_in_process(farm, "whoami", key=key.secret))  # takes one of the 2 tokens
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

    rotate, rate = in_turn(
        farm,
        ("key", "rotate", unknown),
        ("key", "rate", unknown, "--burst", "5"),
        key=operator.secret,
    )

    assert refused(rotate).startswith("error: NOT_FOUND: ")
    assert unknown in rotate.stderr
    assert refused(rate).startswith("error: NOT_FOUND: ")
    assert unknown in rate.stderr
