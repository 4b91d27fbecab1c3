"""Region routing: the region whose queue holds a task, and whether it may still fall back.

Revision ID: 0009
Revises: 0008
Create Date: 2027-01-20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from farm_core import migration_ops

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROUTE_PENDING_SQLITE = sa.text("route_pending = 1")
ROUTE_PENDING_POSTGRESQL = sa.text("route_pending = true")


def upgrade() -> None:
    # Tasks accepted before were never routed: their queue is their spec's region.
    migration_ops.add_column_if_missing(
        "tasks", sa.Column("routed_region", sa.String(32), server_default="", nullable=False)
    )
    migration_ops.add_column_if_missing(
        "tasks",
        sa.Column("route_pending", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    migration_ops.create_index(
        "ix_tasks_route_pending",
        "tasks",
        ["create_time"],
        sqlite_where=ROUTE_PENDING_SQLITE,
        postgresql_where=ROUTE_PENDING_POSTGRESQL,
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_route_pending", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("route_pending")
        batch.drop_column("routed_region")
