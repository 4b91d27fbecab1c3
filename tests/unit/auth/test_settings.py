"""The auth service's settings: shared names, prefixed names, defaults."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from farm_auth.settings import AuthSettings
from farm_core.retention import MAX_RETENTION_DAYS, retention_cutoff

NAMES = ("DATABASE_URL", "FARM_AUTH_DATABASE_URL", "FARM_ADMIN_KEY", "FARM_AUTH_PORT")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_work_on_one_machine(tmp_path: Path) -> None:
    settings = AuthSettings(FARM_HOME=tmp_path)

    assert (settings.port, settings.metrics_port) == (7101, 7201)
    assert settings.bootstrap_tenant == "default"
    assert settings.identity_ttl_seconds == 60
    assert settings.key_cache_seconds == 1.0
    assert settings.resolved_admin_key() is None
    assert (
        settings.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'auth.db'}"
    )


def test_shared_and_prefixed_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/farm")
    monkeypatch.setenv("FARM_ADMIN_KEY", "bf_secret")
    monkeypatch.setenv("FARM_AUTH_PORT", "9999")

    settings = AuthSettings()

    assert settings.resolved_database_url() == "postgresql+asyncpg://db/farm"
    assert settings.resolved_admin_key() == "bf_secret"
    assert "bf_secret" not in repr(settings)
    assert settings.port == 9999


def test_own_database_url_wins_over_the_shared_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/shared")
    monkeypatch.setenv("FARM_AUTH_DATABASE_URL", "postgresql://db/auth")

    assert AuthSettings().resolved_database_url() == "postgresql+asyncpg://db/auth"


def test_empty_admin_key_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_ADMIN_KEY", "")

    assert AuthSettings().resolved_admin_key() is None


def test_bootstrap_tenant_must_be_a_tenant_name() -> None:
    with pytest.raises(ValidationError, match="bootstrap_tenant"):
        AuthSettings(bootstrap_tenant="Not A Tenant")


def test_an_audit_retention_longer_than_the_calendar_is_refused() -> None:
    with pytest.raises(ValidationError, match="audit_retention_days"):
        AuthSettings(audit_retention_days=MAX_RETENTION_DAYS + 1)
    assert retention_cutoff(
        AuthSettings(audit_retention_days=MAX_RETENTION_DAYS).audit_retention_days
    )
