"""Alembic environment: migrates on the connection farm_core.db.migrate hands over."""

from farm_core.db import run_migrations
from farm_scheduler.models import Base

run_migrations(Base.metadata)
