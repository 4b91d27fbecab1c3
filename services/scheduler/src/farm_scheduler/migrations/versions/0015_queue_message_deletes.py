"""The WorkItems whose delete from FARM_TASKS failed, kept for the republisher to retry.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from farm_core.db import UtcDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queue_message_deletes",
        sa.Column("task_id", sa.String(32), primary_key=True),
        sa.Column("sequence", sa.BigInteger(), primary_key=True),
        sa.Column("message_id", sa.String(64), nullable=True),
        sa.Column("try_time", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("queue_message_deletes")
