"""The audit log: one row per mutating or refused call.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from farm_core.db import UtcDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("time", UtcDateTime(), nullable=False),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("rpc", sa.String(1000), nullable=False),
        sa.Column("target", sa.String(1000), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("trace_id", sa.String(1000), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("message", sa.String(1000), nullable=False),
    )
    op.create_index("ix_audit_records_time_id", "audit_records", ["time", "id"])
    op.create_index("ix_audit_records_tenant_time", "audit_records", ["tenant", "time"])


def downgrade() -> None:
    op.drop_index("ix_audit_records_tenant_time", table_name="audit_records")
    op.drop_index("ix_audit_records_time_id", table_name="audit_records")
    op.drop_table("audit_records")
