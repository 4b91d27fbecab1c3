"""Fixtures of the shared-code tests that use a database."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_core.db import async_database_url, create_engine


@pytest.fixture
async def engine(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on one empty database: a SQLite file, or a fresh PostgreSQL database."""
    shared = create_engine(async_database_url(database_url, tmp_path / "shared.db"))
    try:
        yield shared
    finally:
        await shared.dispose()
