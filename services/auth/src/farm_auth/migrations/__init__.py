"""Alembic migrations of the auth service's tables (version table alembic_version_auth)."""
