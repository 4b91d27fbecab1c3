"""Attempt history, retries, deadlines, dead letters and requeues.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from farm_core import migration_ops
from farm_core.db import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEAD_LETTER_PENDING_SQLITE = sa.text("dead_letter_pending = 1")
DEAD_LETTER_PENDING_POSTGRESQL = sa.text("dead_letter_pending = true")


def upgrade() -> None:
    for column in (
        sa.Column("error_retryable", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("deadline", UtcDateTime(), nullable=True),
        sa.Column("retry_time", UtcDateTime(), nullable=True),
        sa.Column("dead_time", UtcDateTime(), nullable=True),
        sa.Column("dead_letter_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("attempt_base", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("requeues", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("requeue_time", UtcDateTime(), nullable=True),
        sa.Column(
            "requeue_event_sequence", sa.BigInteger(), nullable=False, server_default=sa.text("0")
        ),
        sa.Column("revision", sa.Integer(), nullable=False, server_default=sa.text("0")),
    ):
        migration_ops.add_column_if_missing("tasks", column)
    migration_ops.create_index("ix_tasks_status_deadline", "tasks", ["status", "deadline"])
    migration_ops.create_index(
        "ix_tasks_tenant_dead_time_id", "tasks", ["tenant", "dead_time", "id"]
    )
    migration_ops.create_index(
        "ix_tasks_dead_letter_pending",
        "tasks",
        ["dead_time"],
        sqlite_where=DEAD_LETTER_PENDING_SQLITE,
        postgresql_where=DEAD_LETTER_PENDING_POSTGRESQL,
    )
    # Tasks that failed before dead letters existed are dead letters too (never copied
    # to FARM_DEAD, which did not exist either). After the index builds (which commit
    # what precedes them on PostgreSQL), so that the rows it locks are only the
    # failed tasks', not the whole table's under ADD COLUMN's lock.
    op.execute(
        sa.text("UPDATE tasks SET dead_time = finish_time WHERE status = 'TASK_STATUS_FAILED'")
    )
    op.create_table(
        "task_attempts",
        sa.Column(
            "task_id",
            sa.String(32),
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("attempt", sa.Integer(), primary_key=True),
        sa.Column("agent_id", sa.String(255), nullable=False),
        sa.Column("start_time", UtcDateTime(), nullable=True),
        sa.Column("finish_time", UtcDateTime(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("retryable", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("task_attempts")
    op.drop_index("ix_tasks_dead_letter_pending", table_name="tasks")
    op.drop_index("ix_tasks_tenant_dead_time_id", table_name="tasks")
    op.drop_index("ix_tasks_status_deadline", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        for name in (
            "revision",
            "requeue_event_sequence",
            "requeue_time",
            "requeues",
            "attempt_base",
            "dead_letter_pending",
            "dead_time",
            "retry_time",
            "deadline",
            "error_retryable",
        ):
            batch.drop_column(name)
