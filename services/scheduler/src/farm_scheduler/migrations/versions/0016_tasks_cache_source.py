"""Retention: a cached task names the task whose result (and artifacts) it shares.

The retention sweep keeps a task while a task answered from its result is kept
(`cache_source` points at it, found through a partial index). Cached tasks from
before this migration name none: the sweep keeps every task of their tenant that
ended before them until they are gone (a second partial index finds them, and
empties as they age out). Closed sessions are found by their close time.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text

from farm_core import migration_ops

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    migration_ops.add_column_if_missing(
        "tasks", sa.Column("cache_source", sa.String(32), server_default="", nullable=False)
    )
    has_source = text("cache_source <> ''")
    migration_ops.create_index(
        "ix_tasks_cache_source",
        "tasks",
        ["cache_source"],
        sqlite_where=has_source,
        postgresql_where=has_source,
    )
    migration_ops.create_index(
        "ix_tasks_unsourced_cached",
        "tasks",
        ["tenant", "finish_time"],
        sqlite_where=text("cached = 1 AND cache_source = ''"),
        postgresql_where=text("cached = true AND cache_source = ''"),
    )
    closed = text("close_time IS NOT NULL")
    migration_ops.create_index(
        "ix_sessions_close_time",
        "sessions",
        ["close_time"],
        sqlite_where=closed,
        postgresql_where=closed,
    )


def downgrade() -> None:
    op.drop_index("ix_sessions_close_time", table_name="sessions")
    op.drop_index("ix_tasks_unsourced_cached", table_name="tasks")
    op.drop_index("ix_tasks_cache_source", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("cache_source")
