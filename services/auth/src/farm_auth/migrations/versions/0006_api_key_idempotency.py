"""The idempotency key of the CreateApiKey that made a key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as api_keys:
        api_keys.add_column(sa.Column("idempotency_tenant", sa.String(63), nullable=True))
        api_keys.add_column(sa.Column("idempotency_key", sa.String(128), nullable=True))
    op.create_index(
        "uq_api_keys_idempotency_key",
        "api_keys",
        ["idempotency_tenant", "idempotency_key"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_api_keys_idempotency_key", table_name="api_keys")
    with op.batch_alter_table("api_keys") as api_keys:
        api_keys.drop_column("idempotency_key")
        api_keys.drop_column("idempotency_tenant")
