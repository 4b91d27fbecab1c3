"""The tasks' indexes on deadline, finish time and dead time hold only the rows that have one.

A new task has none of the three, yet each of its INSERTs wrote an entry into all
three indexes; the queries these indexes serve (the sweeper's overdue tasks, the
fleet status's tasks ended lately, the dead letters' pages) each compare the
column or ask for it to be set, which implies it is NOT NULL, so SQLite and
PostgreSQL use the partial indexes for them as before.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text

from farm_core import migration_ops

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("ix_tasks_status_deadline", ["status", "deadline"], "deadline"),
    ("ix_tasks_status_finish_time", ["status", "finish_time"], "finish_time"),
    ("ix_tasks_tenant_dead_time_id", ["tenant", "dead_time", "id"], "dead_time"),
)


def upgrade() -> None:
    if migration_ops.on_postgresql():
        for name, columns, column in _INDEXES:
            _replace_concurrently(name, columns, column)
        return
    for name, columns, column in _INDEXES:
        op.drop_index(name, table_name="tasks")
        where = text(f"{column} IS NOT NULL")
        op.create_index(name, "tasks", columns, sqlite_where=where)


def _replace_concurrently(name: str, columns: list[str], column: str) -> None:
    # Built beside the old one, then swapped: tasks stay readable and writable
    # throughout. Each step is safe to run again after a crash at any point.
    if _is_partial(name):
        return
    where = text(f"{column} IS NOT NULL")
    migration_ops.create_index(f"{name}_partial", "tasks", columns, postgresql_where=where)
    migration_ops.drop_index(name, "tasks")
    op.execute(f"ALTER INDEX {name}_partial RENAME TO {name}")


def _is_partial(name: str) -> bool:
    return bool(
        op.get_bind().scalar(
            sa.text(
                "SELECT i.indpred IS NOT NULL AND i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = :name AND pg_catalog.pg_table_is_visible(c.oid)"
            ),
            {"name": name},
        )
    )


def downgrade() -> None:
    for name, columns, _column in _INDEXES:
        op.drop_index(name, table_name="tasks")
        op.create_index(name, "tasks", columns)
