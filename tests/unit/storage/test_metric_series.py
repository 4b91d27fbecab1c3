"""Storage's counters with a fixed set of label values serve every series from the start."""

from tests.unit.metric_series import fresh_counters, unserved_fixed_series

KINDS = ("SCREENSHOT", "PDF", "CONTENT", "VIDEO", "HAR", "DIFF")
STORED_KINDS = tuple(f"ARTIFACT_KIND_{kind}" for kind in KINDS)
# Each counter of storage with a fixed set of label values: each label and the values
# docs/metrics.md names for it.
FIXED_SETS: dict[str, dict[str, tuple[str, ...]]] = {
    "farm_storage_uploads_total": {"kind": STORED_KINDS},
    "farm_storage_upload_bytes_total": {"kind": STORED_KINDS},
    "farm_storage_s3_failures_total": {
        "operation": ("PutObject", "GetObject", "RemoveObject", "RemoveObjects")
    },
    "farm_audit_records_total": {"outcome": ("published", "dropped")},
}


def test_a_fresh_storage_serves_every_value_of_its_fixed_set_counters_before_any_event() -> None:
    # The overview dashboard rates uploads by kind: a kind's first upload after a start
    # would not show if its series began with it.
    missing = unserved_fixed_series(fresh_counters("farm_storage"), FIXED_SETS)
    assert not missing, f"a fresh storage does not serve: {missing}"
