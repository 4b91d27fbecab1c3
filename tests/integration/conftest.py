"""Fixtures every service's integration tests share."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from tests.integration.configured_nats import ConfiguredNats, running_configured_nats


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


@pytest.fixture
def configured_nats(tmp_path: Path) -> Iterator[ConfiguredNats]:
    """A nats-server of the test's own, with accounts and a config a SIGHUP reloads."""
    with running_configured_nats(tmp_path / "configured-nats") as server:
        yield server
