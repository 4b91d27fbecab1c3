"""Limits as set and as in force, their updates, and when a rotated key's old secret works."""

import datetime as dt

import pytest

from farm.auth.v1 import auth_pb2
from farm_auth.keys import KeyRecord, refusal
from farm_auth.limits import (
    LimitDefaults,
    QuotaSetting,
    RateLimit,
    RateSetting,
    grace_seconds,
    updated_quotas,
    updated_rate,
)
from farm_core.errors import InvalidArgument
from farm_core.quotas import TenantQuotas

DEFAULTS = LimitDefaults(
    rate_per_second=50,
    rate_burst=100,
    max_queued_tasks=10,
    max_running_tasks=0,
    max_artifact_bytes=1000,
    max_open_sessions=4,
)
NOW = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)


def test_unset_limits_take_the_farm_defaults() -> None:
    assert DEFAULTS.rate(RateSetting()) == RateLimit(50, 100)
    assert DEFAULTS.rate(RateSetting(per_second=2)) == RateLimit(2, 100)
    assert DEFAULTS.quotas(QuotaSetting(max_running_tasks=3)) == TenantQuotas(10, 3, 1000, 4)
    assert DEFAULTS.quotas(QuotaSetting(max_open_sessions=1)).max_open_sessions == 1


def test_an_update_changes_only_the_fields_it_sets_and_0_means_default() -> None:
    request = auth_pb2.UpdateApiKeyRequest(id="key_1", rate_limit_burst=0)
    assert updated_rate(RateSetting(5, 7), request) == RateSetting(5, None)

    quotas = auth_pb2.UpdateTenantLimitsRequest(name="acme", max_queued_tasks=4)
    assert updated_quotas(QuotaSetting(1, 2, 3), quotas) == QuotaSetting(4, 2, 3)
    sessions = auth_pb2.UpdateTenantLimitsRequest(name="acme", max_open_sessions=2)
    assert updated_quotas(QuotaSetting(1, 2, 3, 9), sessions) == QuotaSetting(1, 2, 3, 2)


@pytest.mark.parametrize("value", [-1, 100_001])
def test_an_out_of_range_rate_names_its_field(value: int) -> None:
    request = auth_pb2.UpdateApiKeyRequest(id="key_1", rate_limit_per_second=value)
    with pytest.raises(InvalidArgument, match=r"^rateLimitPerSecond: "):
        updated_rate(RateSetting(), request)


def test_a_negative_quota_names_its_field() -> None:
    request = auth_pb2.UpdateTenantLimitsRequest(name="acme", max_artifact_bytes=-5)
    with pytest.raises(InvalidArgument, match=r"^maxArtifactBytes: "):
        updated_quotas(QuotaSetting(), request)


def test_grace_is_the_requests_or_the_default_within_30_days() -> None:
    assert grace_seconds(auth_pb2.RotateApiKeyRequest(id="k"), 60.0) == 60.0
    assert grace_seconds(auth_pb2.RotateApiKeyRequest(id="k", grace_seconds=0), 60.0) == 0.0
    with pytest.raises(InvalidArgument, match=r"^graceSeconds: "):
        grace_seconds(auth_pb2.RotateApiKeyRequest(id="k", grace_seconds=31 * 86400), 60.0)


def rotated(grace_end: dt.datetime) -> KeyRecord:
    return KeyRecord(
        id="key_1",
        tenant="acme",
        name="ci",
        scopes=("tasks.read",),
        secret_hash="new",
        create_time=NOW - dt.timedelta(days=1),
        previous_secret_hash="old",
        previous_secret_expire_time=grace_end,
    )


def test_the_old_secret_works_until_the_grace_period_ends_and_the_new_one_after() -> None:
    record = rotated(NOW + dt.timedelta(seconds=5))

    assert refusal(record, NOW, "old") is None
    assert refusal(record, NOW, "new") is None
    late = refusal(record, NOW + dt.timedelta(seconds=5), "old")
    assert late is not None and late.outcome == "rotated"
    assert refusal(record, NOW + dt.timedelta(days=9), "new") is None
