"""Fixtures of the auth unit tests."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from farm_auth.audit_log import AuditLog
from farm_auth.store import KeyStore
from farm_core.db import async_database_url


@pytest.fixture
async def audit_log(tmp_path: Path) -> AsyncIterator[AuditLog]:
    """The audit log over a fresh, migrated SQLite database."""
    store = KeyStore(async_database_url("", tmp_path / "auth.db"))
    await store.start()
    yield AuditLog(store.engine)
    await store.close()
