"""Alembic migrations of the storage service's tables (version table alembic_version_storage)."""
