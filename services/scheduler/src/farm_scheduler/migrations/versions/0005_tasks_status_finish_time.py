"""An index for counting the tasks that ended lately by state (the fleet status).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""

from collections.abc import Sequence

from alembic import op

from farm_core import migration_ops

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    migration_ops.create_index("ix_tasks_status_finish_time", "tasks", ["status", "finish_time"])


def downgrade() -> None:
    op.drop_index("ix_tasks_status_finish_time", table_name="tasks")
