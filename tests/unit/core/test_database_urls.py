"""DATABASE_URL (and FARM_<SERVICE>_DATABASE_URL) is checked when the settings are read."""

import pytest

from farm_core.db import checked_database_url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "postgresql://farm:secret@127.0.0.1:5432/farm",
        "postgres://farm@db/farm",
        "postgresql+asyncpg://farm@db:6432/farm",
        "sqlite:////var/lib/farm/auth.db",
        "sqlite+aiosqlite:///auth.db",
    ],
)
def test_database_urls_the_farm_runs_on_are_taken(url: str) -> None:
    assert checked_database_url(url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgresql//farm@db/farm", "not a database URL"),
        ("db:5432/farm", "not a database URL"),
        ("postgresql://farm@db:port/farm", "not a database URL"),
        ("postgresql://farm@db:70000/farm", "port 70000 is out of range"),
        ("mysql://farm@db/farm", "PostgreSQL \\(asyncpg\\) or SQLite only"),
        ("postgresql+psycopg2://farm@db/farm", "PostgreSQL \\(asyncpg\\) or SQLite only"),
    ],
)
def test_other_database_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        checked_database_url(url)
