"""Sessions (the tenants' saved profiles are the storage service's).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from farm_core.db import UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("spec", sa.LargeBinary(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("agent_id", sa.String(255), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("expire_time", UtcDateTime(), nullable=False),
        sa.Column("close_time", UtcDateTime(), nullable=True),
        sa.Column("close_reason", sa.String(32), nullable=False),
        sa.Column("commands", sa.Integer(), nullable=False),
        sa.Column("recording", sa.LargeBinary(), nullable=False),
    )
    op.create_index(
        "ix_sessions_tenant_create_time_id", "sessions", ["tenant", "create_time", "id"]
    )
    op.create_index("ix_sessions_state_agent", "sessions", ["state", "agent_id"])


def downgrade() -> None:
    op.drop_index("ix_sessions_state_agent", "sessions")
    op.drop_index("ix_sessions_tenant_create_time_id", "sessions")
    op.drop_table("sessions")
