"""A tenant's quota of open sessions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: the farm's default (FARM_AUTH_MAX_OPEN_SESSIONS).
    with op.batch_alter_table("tenants") as tenants:
        tenants.add_column(sa.Column("max_open_sessions", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as tenants:
        tenants.drop_column("max_open_sessions")
