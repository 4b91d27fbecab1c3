"""The artifacts table.

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


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("task_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("object_key", sa.String(512), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("task_id", "name", name="uq_artifacts_task_id_name"),
    )
    op.create_index(
        "ix_artifacts_tenant_create_time_id", "artifacts", ["tenant", "create_time", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_artifacts_tenant_create_time_id", table_name="artifacts")
    op.drop_table("artifacts")
