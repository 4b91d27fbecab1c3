"""Bytes reserved by uploads in flight, so that concurrent uploads cannot pass a byte quota.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from farm_core.db import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "byte_reservations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("expire_time", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_byte_reservations_tenant", "byte_reservations", ["tenant"])


def downgrade() -> None:
    op.drop_index("ix_byte_reservations_tenant", table_name="byte_reservations")
    op.drop_table("byte_reservations")
