"""Tasks keep their tenant's artifact byte quota, which their grants carry to storage.

Revision ID: 0010
Revises: 0009
Create Date: 2027-02-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("tenant_max_artifact_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("tenant_max_artifact_bytes")
