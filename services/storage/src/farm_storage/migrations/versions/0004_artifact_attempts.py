"""The task attempt that stored each artifact, so a stale attempt cannot overwrite later ones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-12
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Artifacts stored before name no attempt: (0, 0), which fences nothing out.
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(
            sa.Column("work_sequence", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_column("attempt")
        batch.drop_column("work_sequence")
