"""Fixtures of the auth unit tests."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_auth.audit_log import AuditLog
from farm_auth.store import KeyStore
from farm_core.db import async_database_url


@pytest.fixture
async def auth_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """The engine of a fresh, migrated SQLite database of the auth service."""
    store = KeyStore(async_database_url("", tmp_path / "auth.db"))
    await store.start()
    yield store.engine
    await store.close()


@pytest.fixture
def audit_log(auth_engine: AsyncEngine) -> AuditLog:
    """The audit log over a fresh, migrated SQLite database."""
    return AuditLog(auth_engine)
