"""Callbacks: whether a task's callback is still to be delivered, its attempts, the secrets.

Revision ID: 0008
Revises: 0007
Create Date: 2027-01-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from farm_core import migration_ops
from farm_core.db import UtcDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CALLBACK_PENDING_SQLITE = sa.text("callback_pending = 1")
CALLBACK_PENDING_POSTGRESQL = sa.text("callback_pending = true")


def upgrade() -> None:
    # Tasks accepted before had no callback URL: nothing pending.
    migration_ops.add_column_if_missing(
        "tasks",
        sa.Column("callback_pending", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    migration_ops.add_column_if_missing(
        "tasks", sa.Column("callback_due", UtcDateTime(), nullable=True)
    )
    migration_ops.create_index(
        "ix_tasks_callback_pending",
        "tasks",
        ["callback_due"],
        sqlite_where=CALLBACK_PENDING_SQLITE,
        postgresql_where=CALLBACK_PENDING_POSTGRESQL,
    )
    op.create_table(
        "task_callback_attempts",
        sa.Column(
            "task_id",
            sa.String(32),
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("attempt", sa.Integer(), primary_key=True),
        sa.Column("time", UtcDateTime(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
    )
    op.create_table(
        "webhook_secrets",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("previous_secret", sa.String(128), nullable=False, server_default=""),
        sa.Column("previous_valid_until", UtcDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("webhook_secrets")
    op.drop_table("task_callback_attempts")
    op.drop_index("ix_tasks_callback_pending", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("callback_due")
        batch.drop_column("callback_pending")
