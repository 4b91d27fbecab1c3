"""Fixtures every service's integration tests share."""

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The service's database: its default SQLite file, or a fresh PostgreSQL one.

    The scheduler's tests use SQLite only (their own fixture), and PostgreSQL in
    test_postgres.py.
    """
    if request.param == "sqlite":
        return ""
    return str(request.getfixturevalue("postgres_url"))
