"""The scheduler's settings: defaults for one machine, its own prefix, shared names."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from farm_core.retention import MAX_RETENTION_DAYS, retention_cutoff
from farm_scheduler.settings import SchedulerSettings


def test_defaults_suit_one_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("FARM_SCHEDULER_DATABASE_URL", raising=False)
    settings = SchedulerSettings(FARM_HOME=tmp_path)
    assert (settings.port, settings.metrics_port) == (7103, 7203)
    assert settings.max_attempts_cap == 10
    assert settings.default_timeout_ms == 30000
    assert settings.run_queue_wait_seconds == 60
    assert settings.republish_interval_seconds == 5
    assert settings.republish_grace_seconds > settings.publish_timeout_seconds
    assert settings.idempotency_window_seconds == 86400
    assert settings.deadline_sweep_interval_seconds == 1
    assert settings.run_deadline_grace_seconds == 5
    assert settings.resolved_database_url() == (
        f"sqlite+aiosqlite:///{tmp_path / 'data' / 'scheduler.db'}"
    )


def test_environment_sets_prefixed_and_shared_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_SCHEDULER_PORT", "9103")
    monkeypatch.setenv("FARM_SCHEDULER_MAX_ATTEMPTS_CAP", "4")
    monkeypatch.setenv("FARM_SCHEDULER_IDEMPOTENCY_WINDOW_SECONDS", "60")
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.example/farm")
    settings = SchedulerSettings()
    assert (settings.port, settings.max_attempts_cap) == (9103, 4)
    assert settings.idempotency_window_seconds == 60
    assert settings.resolved_database_url() == "postgresql+asyncpg://db.example/farm"


def test_scheduler_database_url_wins_over_the_shared_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://shared/farm")
    monkeypatch.setenv("FARM_SCHEDULER_DATABASE_URL", "postgresql://own/scheduler")
    assert SchedulerSettings().database_url == "postgresql://own/scheduler"


@pytest.mark.parametrize("grace", ["5", "4"])
def test_a_republish_grace_not_above_the_publish_timeout_is_refused(
    monkeypatch: pytest.MonkeyPatch, grace: str
) -> None:
    monkeypatch.setenv("FARM_SCHEDULER_REPUBLISH_GRACE_SECONDS", grace)
    monkeypatch.setenv("FARM_SCHEDULER_PUBLISH_TIMEOUT_SECONDS", "5")
    with pytest.raises(ValidationError) as refused:
        SchedulerSettings()
    assert (
        f"FARM_SCHEDULER_REPUBLISH_GRACE_SECONDS ({grace}) must be above "
        "FARM_SCHEDULER_PUBLISH_TIMEOUT_SECONDS (5)"
    ) in str(refused.value)


def test_a_retention_longer_than_the_calendar_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A million days: the sweep's cutoff would fall before the year 1 at every round.
    monkeypatch.setenv("FARM_SCHEDULER_TASK_RETENTION_DAYS", "1000000")
    with pytest.raises(ValidationError, match="task_retention_days"):
        SchedulerSettings()
    monkeypatch.setenv("FARM_SCHEDULER_TASK_RETENTION_DAYS", str(MAX_RETENTION_DAYS))
    days = SchedulerSettings().task_retention_days
    assert retention_cutoff(days) < retention_cutoff(30)
