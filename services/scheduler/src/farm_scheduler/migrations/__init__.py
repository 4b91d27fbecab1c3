"""Alembic migrations of the scheduler's tables (version table alembic_version_scheduler)."""
