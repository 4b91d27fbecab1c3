"""The scheduler's counters with a fixed set of label values serve every series from the start."""

from tests.unit.metric_series import fresh_counters, unserved_fixed_series

FINAL = ("succeeded", "failed", "cancelled")
# Each counter of the scheduler with a fixed set of label values: each label and the
# values docs/metrics.md names for it.
FIXED_SETS: dict[str, dict[str, tuple[str, ...]]] = {
    "farm_tasks_created_total": {"priority": ("high", "normal", "low")},
    "farm_tasks_finished_total": {"status": FINAL},
    "farm_refused_agent_events_total": {
        "kind": ("tasks", "sessions"),
        "reason": ("agent_differs", "unbound"),
    },
    "farm_stale_attempt_events_total": {"status": (*FINAL, "queued")},
    "farm_late_final_events_total": {"status": ("succeeded", "failed")},
    "farm_unclaimed_session_closes_total": {
        "why": ("no_session", "unplaced", "other_agent", "closed")
    },
    "farm_callback_attempts_failed_total": {"retried": ("true", "false")},
    "farm_sweep_rounds_total": {"sweep": ("scheduler-retention",), "outcome": ("swept", "skipped")},
    "farm_audit_records_total": {"outcome": ("published", "dropped")},
}


def test_a_fresh_scheduler_serves_every_value_of_its_fixed_set_counters_before_any_event() -> None:
    # Dashboards and alerts rate these by their labels: a series that appears at its
    # first event has no earlier sample, so that event never shows in a rate, and a
    # panel over a fresh farm is empty rather than 0.
    missing = unserved_fixed_series(fresh_counters("farm_scheduler"), FIXED_SETS)
    assert not missing, f"a fresh scheduler does not serve: {missing}"
