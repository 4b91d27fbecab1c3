"""Alembic environment: migrates on the connection farm_core.db.migrate hands over."""

from farm_auth import audit_log  # noqa: F401 - puts audit_records on Base.metadata
from farm_auth.models import Base
from farm_core.db import run_migrations

run_migrations(Base.metadata)
