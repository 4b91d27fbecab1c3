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

from alembic import op
from sqlalchemy import text

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
    if op.get_bind().dialect.name == "postgresql":
        # Built beside the old ones first: while they build, tasks stay readable (a
        # CREATE INDEX holds off only writes); the drops' exclusive lock, held to the
        # commit, comes last.
        for name, columns, column in _INDEXES:
            where = text(f"{column} IS NOT NULL")
            op.create_index(f"{name}_partial", "tasks", columns, postgresql_where=where)
        for name, _columns, _column in _INDEXES:
            op.drop_index(name, table_name="tasks")
            op.execute(f"ALTER INDEX {name}_partial RENAME TO {name}")
        return
    for name, columns, column in _INDEXES:
        op.drop_index(name, table_name="tasks")
        where = text(f"{column} IS NOT NULL")
        op.create_index(name, "tasks", columns, sqlite_where=where)


def downgrade() -> None:
    for name, columns, _column in _INDEXES:
        op.drop_index(name, table_name="tasks")
        op.create_index(name, "tasks", columns)
