"""Each tenant's artifacts and their bytes by kind in one row, kept by triggers.

Before, every upload under a byte quota summed the sizes of all the tenant's
artifacts, and the gauges counted every artifact: their cost grew with what is
stored. Now the quota check reads the tenant's rows (one per kind) and the gauges
add up the rows. The triggers keep the rows in step with every insert, update and
delete of `artifacts`, in the same transaction, whatever the writer. On PostgreSQL
they fire at commit (deferred), so a delete that waits for the scheduler's answer
does not hold the tenant's row meanwhile.

On SQLite, a later migration that rebuilds `artifacts` (Alembic's batch mode) drops
its triggers and must make them again (SQLITE_TRIGGERS here);
tests/integration/storage/test_artifact_totals.py fails if they are missing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-14
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ADD = """
    INSERT INTO artifact_totals (tenant, kind, artifacts, stored_bytes)
    VALUES ({row}.tenant, {row}.kind, 1, {row}.size_bytes)
    ON CONFLICT (tenant, kind) DO UPDATE
    SET artifacts = artifact_totals.artifacts + 1,
        stored_bytes = artifact_totals.stored_bytes + excluded.stored_bytes;
"""
_TAKE = """
    UPDATE artifact_totals
    SET artifacts = artifacts - 1, stored_bytes = stored_bytes - {row}.size_bytes
    WHERE tenant = {row}.tenant AND kind = {row}.kind;
"""
_COUNTED = "tenant, kind, size_bytes"
SQLITE_TRIGGERS = {
    "artifacts_totals_inserted": f"AFTER INSERT ON artifacts BEGIN {_ADD.format(row='NEW')} END",
    "artifacts_totals_updated": (
        f"AFTER UPDATE OF {_COUNTED} ON artifacts BEGIN "
        f"{_TAKE.format(row='OLD')} {_ADD.format(row='NEW')} END"
    ),
    "artifacts_totals_deleted": f"AFTER DELETE ON artifacts BEGIN {_TAKE.format(row='OLD')} END",
}
_POSTGRES_FUNCTION = "farm_storage_count_artifacts"
_POSTGRES_TRIGGER = "artifacts_totals_counted"


def _postgres_triggers() -> None:
    op.execute(
        f"""
        CREATE FUNCTION {_POSTGRES_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                {_TAKE.format(row="OLD")}
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                {_ADD.format(row="NEW")}
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        f"""
        CREATE CONSTRAINT TRIGGER {_POSTGRES_TRIGGER}
        AFTER INSERT OR UPDATE OF {_COUNTED} OR DELETE ON artifacts
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION {_POSTGRES_FUNCTION}()
        """
    )


def upgrade() -> None:
    op.create_table(
        "artifact_totals",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(64), primary_key=True),
        sa.Column("artifacts", sa.BigInteger(), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
    )
    # The triggers first: on PostgreSQL making one locks out writes to `artifacts` until
    # this migration commits, so the sum below misses none.
    if op.get_bind().dialect.name == "postgresql":
        _postgres_triggers()
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    op.execute(
        "INSERT INTO artifact_totals (tenant, kind, artifacts, stored_bytes) "
        "SELECT tenant, kind, COUNT(*), SUM(size_bytes) FROM artifacts GROUP BY tenant, kind"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {_POSTGRES_TRIGGER} ON artifacts")
        op.execute(f"DROP FUNCTION {_POSTGRES_FUNCTION}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("artifact_totals")
