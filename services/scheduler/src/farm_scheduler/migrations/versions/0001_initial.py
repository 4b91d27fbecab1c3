"""The tasks table.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from farm_core.db import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_IDEMPOTENCY_KEY = sa.text("idempotency_key <> ''")
UNPUBLISHED_SQLITE = sa.text("published = 0")
UNPUBLISHED_POSTGRESQL = sa.text("published = false")


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("spec", sa.LargeBinary(), nullable=False),
        sa.Column("priority", sa.String(32), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(255), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("start_time", UtcDateTime(), nullable=True),
        sa.Column("finish_time", UtcDateTime(), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_tasks_tenant_create_time_id", "tasks", ["tenant", "create_time", "id"])
    op.create_index("ix_tasks_tenant_status", "tasks", ["tenant", "status"])
    op.create_index(
        "uq_tasks_tenant_idempotency_key",
        "tasks",
        ["tenant", "idempotency_key"],
        unique=True,
        sqlite_where=HAS_IDEMPOTENCY_KEY,
        postgresql_where=HAS_IDEMPOTENCY_KEY,
    )
    op.create_index(
        "ix_tasks_unpublished",
        "tasks",
        ["create_time"],
        sqlite_where=UNPUBLISHED_SQLITE,
        postgresql_where=UNPUBLISHED_POSTGRESQL,
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_unpublished", table_name="tasks")
    op.drop_index("uq_tasks_tenant_idempotency_key", table_name="tasks")
    op.drop_index("ix_tasks_tenant_status", table_name="tasks")
    op.drop_index("ix_tasks_tenant_create_time_id", table_name="tasks")
    op.drop_table("tasks")
