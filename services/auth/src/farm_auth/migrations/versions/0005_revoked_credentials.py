"""Revocations of farm processes' credentials.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from farm_core.db import UtcDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "revoked_credentials",
        sa.Column("revoked_by", sa.String(8), primary_key=True),
        sa.Column("target", sa.String(200), primary_key=True),
        sa.Column("revoke_time", UtcDateTime(), nullable=False),
        sa.Column("expire_time", UtcDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("revoked_credentials")
