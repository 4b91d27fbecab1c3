"""The end marks (and withdrawals) NATS did not take, kept for the republisher to retry.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from farm_core.db import UtcDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_end_marks",
        sa.Column("task_id", sa.String(32), primary_key=True),
        sa.Column("reason", sa.String(96), nullable=True),
        sa.Column("try_time", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pending_end_marks")
