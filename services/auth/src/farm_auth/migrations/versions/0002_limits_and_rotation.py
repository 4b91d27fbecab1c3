"""Per-key rate limits, per-tenant quotas and the previous secret of a rotated key.

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
    with op.batch_alter_table("tenants") as tenants:
        tenants.add_column(sa.Column("max_queued_tasks", sa.BigInteger(), nullable=True))
        tenants.add_column(sa.Column("max_running_tasks", sa.BigInteger(), nullable=True))
        tenants.add_column(sa.Column("max_artifact_bytes", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("api_keys") as api_keys:
        api_keys.add_column(sa.Column("rate_per_second", sa.Integer(), nullable=True))
        api_keys.add_column(sa.Column("rate_burst", sa.Integer(), nullable=True))
        api_keys.add_column(sa.Column("previous_secret_hash", sa.String(64), nullable=True))
        api_keys.add_column(sa.Column("previous_secret_expire_time", UtcDateTime(), nullable=True))
    op.create_index(
        "ix_api_keys_previous_secret_hash", "api_keys", ["previous_secret_hash"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_api_keys_previous_secret_hash", table_name="api_keys")
    with op.batch_alter_table("api_keys") as api_keys:
        for column in (
            "previous_secret_expire_time",
            "previous_secret_hash",
            "rate_burst",
            "rate_per_second",
        ):
            api_keys.drop_column(column)
    with op.batch_alter_table("tenants") as tenants:
        for column in ("max_artifact_bytes", "max_running_tasks", "max_queued_tasks"):
            tenants.drop_column(column)
