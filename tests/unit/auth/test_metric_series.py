"""Auth's counters with a fixed set of label values serve every series from the start."""

from tests.unit.metric_series import fresh_counters, unserved_fixed_series

# The test's own list, not authz.OUTCOMES: a value dropped there must fail here.
CHECK_OUTCOMES = (
    "allowed",
    "missing",
    "malformed",
    "unknown",
    "revoked",
    "expired",
    "rotated",
    "rate_limited",
    "address_blocked",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "unknown_field",
    "bad_value",
    "bad_json",
    "error",
)
# Each counter of auth with a fixed set of label values: each label and the values
# docs/metrics.md names for it.
FIXED_SETS: dict[str, dict[str, tuple[str, ...]]] = {
    "farm_auth_checks_total": {"outcome": CHECK_OUTCOMES},
    "farm_sweep_rounds_total": {"sweep": ("auth-audit-purge",), "outcome": ("swept", "skipped")},
    "farm_audit_records_total": {"outcome": ("published", "dropped")},
}


def test_a_fresh_auth_serves_every_value_of_its_fixed_set_counters_before_any_event() -> None:
    # A rate of refused checks (401s, 429s) must see the first refusal after a start.
    missing = unserved_fixed_series(fresh_counters("farm_auth"), FIXED_SETS)
    assert not missing, f"a fresh auth does not serve: {missing}"
