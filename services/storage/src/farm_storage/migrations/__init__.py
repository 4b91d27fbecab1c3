"""Alembic migrations of the storage service's tables (version table alembic_version_storage)."""

NEWEST_REVISION = "0006"
"""The head of versions/: a start finds the tables there without loading Alembic.

Update it with each new migration (tests/unit/core/test_newest_revision.py holds
it to the scripts); a stale value only costs every start Alembic's full check.
"""
