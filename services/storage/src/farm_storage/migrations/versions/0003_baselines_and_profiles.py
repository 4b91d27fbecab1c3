"""Tenants' baselines of visual comparisons and saved browser profiles (bytes in S3).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
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
        "baselines",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("viewport_width", sa.Integer(), nullable=False),
        sa.Column("viewport_height", sa.Integer(), nullable=False),
        sa.Column("artifact_id", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("object_key", sa.String(512), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("update_time", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("tenant", "key_sha256", name="uq_baselines_tenant_key"),
    )
    op.create_index(
        "ix_baselines_tenant_update_time_id", "baselines", ["tenant", "update_time", "id"]
    )
    op.create_table(
        "profiles",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("cookies", sa.Integer(), nullable=False),
        sa.Column("origins", sa.JSON(), nullable=False),
        sa.Column("object_key", sa.String(512), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("update_time", UtcDateTime(), nullable=False),
    )
    op.create_index(
        "ix_profiles_tenant_update_time_name", "profiles", ["tenant", "update_time", "name"]
    )


def downgrade() -> None:
    op.drop_index("ix_profiles_tenant_update_time_name", table_name="profiles")
    op.drop_table("profiles")
    op.drop_index("ix_baselines_tenant_update_time_id", table_name="baselines")
    op.drop_table("baselines")
