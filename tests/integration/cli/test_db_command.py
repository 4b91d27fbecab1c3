"""`farm db status|migrate` on real SQLite files and a real PostgreSQL database."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from farm_cli.main import main
from farm_core.db import async_database_url, create_engine, migrate
from farm_scheduler.store import MIGRATIONS, VERSION_TABLE
from tests.postgres import POSTGRES_URL, create_database, drop_database, postgres_reachable

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(params=["sqlite", "postgres"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """The async URL of the database `farm db` works on: the default SQLite, or PostgreSQL."""
    monkeypatch.setenv("FARM_HOME", str(tmp_path))
    for service in ("", "FARM_STORAGE_", "FARM_AUTH_", "FARM_SCHEDULER_"):
        monkeypatch.delenv(f"{service}DATABASE_URL", raising=False)
    if request.param == "sqlite":
        yield async_database_url("", tmp_path / "data" / "scheduler.db")
        return
    if not postgres_reachable():
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}")
    url = await create_database()
    monkeypatch.setenv("DATABASE_URL", url)
    try:
        yield async_database_url(url, tmp_path)
    finally:
        await drop_database(url)


def farm_db(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, Any, str]:
    """Runs `farm db ... --json`: its exit code, its JSON and its stderr."""
    code = main(["db", *words, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else None, err


def states(versions: list[dict[str, Any]]) -> dict[str, tuple[str | None, str]]:
    """Each service's (revision, state)."""
    return {each["service"]: (each["revision"], each["state"]) for each in versions}


async def test_status_and_migrate_take_an_empty_database_to_the_newest(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, versions, _ = farm_db(capsys, "status")
    assert code == 0
    assert {state for _, state in states(versions).values()} == {"empty"}
    if database.startswith("sqlite"):
        # Looking made no database files.
        assert not list(Path(database.removeprefix("sqlite+aiosqlite:///")).parent.iterdir())

    code, migrated, _ = farm_db(capsys, "migrate")
    assert code == 0
    assert [each["service"] for each in migrated] == ["storage", "auth", "scheduler"]
    assert all(each["before"] is None and each["state"] == "current" for each in migrated)

    code, versions, _ = farm_db(capsys, "status")
    assert code == 0
    newest = {each["service"]: each["newest"] for each in versions}
    assert states(versions) == {name: (newest[name], "current") for name in newest}


async def test_migrate_upgrades_tables_an_older_release_left(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_engine(database)
    try:
        await migrate(engine, MIGRATIONS, VERSION_TABLE, revision="0018")
        code, versions, _ = farm_db(capsys, "status", "--service", "scheduler")
        assert code == 0
        assert states(versions) == {"scheduler": ("0018", "behind")}

        code, migrated, _ = farm_db(capsys, "migrate", "--service", "scheduler")
        assert code == 0
        assert migrated[0]["before"] == "0018"
        assert migrated[0]["state"] == "current"
        async with engine.connect() as connection:
            version = await connection.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))
        assert version == migrated[0]["newest"] != "0018"
    finally:
        await engine.dispose()


async def test_a_newer_schema_is_refused_naming_the_backup(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_engine(database)
    try:
        await migrate(engine, MIGRATIONS, VERSION_TABLE)
        async with engine.begin() as connection:
            await connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    finally:
        await engine.dispose()

    code, versions, err = farm_db(capsys, "status", "--service", "scheduler")
    assert code == 1
    assert states(versions) == {"scheduler": ("9999", "newer")}
    assert "restore the backup" in err

    code, _, err = farm_db(capsys, "migrate", "--service", "scheduler")
    assert code == 1
    assert "9999" in err and "restore the backup" in err


def test_an_unreachable_database_is_named_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FARM_HOME", str(tmp_path))
    # Port 1 of the loopback: nothing listens there (tcpmux is long gone).
    monkeypatch.setenv("DATABASE_URL", "postgresql://farm:hunter2@127.0.0.1:1/farm")
    code = main(["db", "status"])
    _, err = capsys.readouterr()
    assert code == 1
    assert (
        "cannot reach the storage database at postgresql+asyncpg://farm:***@127.0.0.1:1/farm" in err
    )
    assert "hunter2" not in err
