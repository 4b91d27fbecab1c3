"""The result cache: each task's cache key, whether it was answered from the cache, an index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-18
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from farm_core import migration_ops

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_CACHE_KEY = sa.text("cache_key <> ''")


def upgrade() -> None:
    # Tasks accepted before have no key: their results never serve the cache.
    migration_ops.add_column_if_missing(
        "tasks", sa.Column("cache_key", sa.String(64), server_default="", nullable=False)
    )
    migration_ops.add_column_if_missing(
        "tasks", sa.Column("cached", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    migration_ops.create_index(
        "ix_tasks_cache",
        "tasks",
        ["tenant", "cache_key", "finish_time"],
        sqlite_where=HAS_CACHE_KEY,
        postgresql_where=HAS_CACHE_KEY,
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_cache", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("cached")
        batch.drop_column("cache_key")
