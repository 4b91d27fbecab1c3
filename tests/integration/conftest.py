"""Fixtures every service's integration tests share."""

from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The service's database: its default SQLite file, or a fresh PostgreSQL one.

    The scheduler's tests use SQLite only (their own fixture), and PostgreSQL in
    test_postgres.py.
    """
    if request.param == "sqlite":
        return ""
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def nc(nats_server: Any) -> AsyncIterator[Client]:
    """A NATS connection to the session's nats-server, drained after the test."""
    client = await nats.connect(nats_server.url)
    try:
        yield client
    finally:
        await client.drain()
