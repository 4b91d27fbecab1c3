"""The task's trace context (W3C traceparent), so that every publish of it joins its trace.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-14
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Tasks accepted before have none: their publishes start no trace of their own.
    op.add_column(
        "tasks", sa.Column("trace_parent", sa.String(64), server_default="", nullable=False)
    )


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("trace_parent")
