"""`farm audit` against the real farm: the records of admin commands, and its bad filters."""

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from farm.auth.v1 import auth_pb2
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.cli_calls import farm_in_process, in_turn, printed, refused, set_limits, set_rate
from tests.e2e.conftest import BOOTSTRAP_TENANT, KeyFactory, new_tenant
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

Record = dict[str, Any]


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
        seen[:] = printed(farm_in_process(farm, "audit", *filters, key=key))["auditRecords"]
        return list(seen) if found(seen) else None

    return eventually(
        listed,
        within=within,
        interval=0.2,
        message=lambda: f"`farm audit {' '.join(filters)}` still lacks the records: {seen}",
    )


def test_audit_lists_the_records_of_the_admin_commands(
    farm: LocalFarm, operator: auth_pb2.CreateApiKeyResponse, make_key: KeyFactory
) -> None:
    tenant = new_tenant("cli")
    tenant_admin = make_key("admin", tenant=tenant)
    key_id = tenant_admin.api_key.id
    set_limits(farm, tenant, "--max-running-tasks", "5", key=operator.secret)
    set_rate(farm, key_id, "--burst", "20", key=operator.secret)
    rotated = printed(
        farm_in_process(farm, "key", "rotate", key_id, "--grace-seconds", "60", key=operator.secret)
    )
    refused(
        farm_in_process(
            farm, "tenant", "limits", tenant, "--max-running-tasks", "500", key=rotated["secret"]
        )
    )
    refused(farm_in_process(farm, "key", "rate", key_id, "--burst", "500", key=rotated["secret"]))

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
    newest, own_ok = in_turn(
        farm,
        ("audit", "--tenant", tenant, "--limit", "1"),
        ("audit", "--tenant", tenant, "--rpc", "UpdateTenantLimits", "--outcome", "ok"),
        key=operator.secret,
    )
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    rotations, none_yet = in_turn(
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
    (next_one,) = in_turn(
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


def test_audit_names_a_bad_limit_since_or_outcome_as_a_usage_error(
    farm: LocalFarm, operator: auth_pb2.CreateApiKeyResponse
) -> None:
    no_limit, bad_since, bad_outcome = in_turn(
        farm,
        ("audit", "--limit", "0"),
        ("audit", "--since", "yesterday"),
        ("audit", "--outcome", "nope"),
        key=operator.secret,
    )

    # A bad --limit, --since or --outcome is a usage error (exit 2), found before any call.
    assert (no_limit.returncode, no_limit.stderr) == (2, "error: --limit: must be at least 1\n")
    assert (bad_since.returncode, bad_since.stderr) == (
        2,
        "error: --since: not a time or an age like \"2h\": 'yesterday'\n",
    )
    assert (bad_outcome.returncode, bad_outcome.stderr) == (
        2,
        "error: --outcome: must be OK or a gRPC status code name, got 'nope'\n",
    )
