"""The storage service's settings: shared names, prefixed names, defaults."""

import re
from pathlib import Path

import pytest

from farm_core.settings_load import load_settings
from farm_storage.settings import StorageSettings, checked_s3_endpoint

SHARED_NAMES = ("DATABASE_URL", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SHARED_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"FARM_STORAGE_{name}", raising=False)


def test_defaults_work_on_one_machine(tmp_path: Path) -> None:
    settings = StorageSettings(FARM_HOME=tmp_path)

    assert (settings.port, settings.metrics_port) == (7102, 7202)
    assert settings.s3_endpoint == "http://127.0.0.1:7304"
    assert settings.s3_bucket == "farm-artifacts"
    assert settings.max_artifact_bytes == 64 * 1024 * 1024
    assert settings.resolved_database_url() == (
        f"sqlite+aiosqlite:///{tmp_path / 'data' / 'storage.db'}"
    )


def test_shared_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/farm")
    monkeypatch.setenv("S3_ENDPOINT", "https://s3.example")
    monkeypatch.setenv("S3_SECRET_KEY", "hush")
    monkeypatch.setenv("FARM_STORAGE_PORT", "9999")

    settings = StorageSettings()

    assert settings.resolved_database_url() == "postgresql+asyncpg://db/farm"
    assert settings.s3_endpoint == "https://s3.example"
    assert settings.s3_secret_key.get_secret_value() == "hush"
    assert "hush" not in repr(settings)
    assert settings.port == 9999


def test_prefixed_name_wins_over_the_shared_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://shared/farm")
    monkeypatch.setenv("FARM_STORAGE_DATABASE_URL", "postgresql://own/storage")

    assert StorageSettings().database_url == "postgresql://own/storage"


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:7304", "https://s3.example", "http://minio:9000/"]
)
def test_s3_endpoints_are_taken(endpoint: str) -> None:
    assert checked_s3_endpoint(endpoint) == endpoint


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("http://minio:9000/farm-artifacts", "a path \\(the bucket is S3_BUCKET\\)"),
        ("http://minio:99999", "bad port"),
        ("ftp://minio:9000", "not an http:// or https:// URL"),
        ("minio:9000", "not an http:// or https:// URL"),
    ],
)
def test_other_s3_endpoints_are_refused_naming_the_setting(
    endpoint: str, why: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("S3_ENDPOINT", endpoint)

    with pytest.raises(SystemExit):
        load_settings(StorageSettings, "storage")

    said = capsys.readouterr().err
    assert f"FARM_STORAGE_S3_ENDPOINT / S3_ENDPOINT='{endpoint}'" in said
    assert re.search(why, said)
