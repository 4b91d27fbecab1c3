"""Each tenant's stored artifact bytes in one row, kept by triggers, so a quota check reads one row.

Before, every upload under a byte quota summed the sizes of all the tenant's
artifacts: its cost grew with what the tenant stores. The triggers keep the row in
step with every insert, update and delete of `artifacts`, in the same transaction,
whatever the writer. On PostgreSQL they fire at commit (deferred), so a delete that
waits for the scheduler's answer does not hold the tenant's row meanwhile.

On SQLite, a later migration that rebuilds `artifacts` (Alembic's batch mode) drops
its triggers and must make them again (SQLITE_TRIGGERS here);
tests/integration/storage/test_stored_bytes.py fails if they are missing.

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
    INSERT INTO tenant_artifact_bytes (tenant, stored_bytes) VALUES ({row}.tenant, {row}.size_bytes)
    ON CONFLICT (tenant) DO UPDATE
    SET stored_bytes = tenant_artifact_bytes.stored_bytes + excluded.stored_bytes;
"""
_TAKE = """
    UPDATE tenant_artifact_bytes SET stored_bytes = stored_bytes - {row}.size_bytes
    WHERE tenant = {row}.tenant;
"""
SQLITE_TRIGGERS = {
    "artifacts_bytes_inserted": f"AFTER INSERT ON artifacts BEGIN {_ADD.format(row='NEW')} END",
    "artifacts_bytes_updated": (
        "AFTER UPDATE OF tenant, size_bytes ON artifacts BEGIN "
        f"{_TAKE.format(row='OLD')} {_ADD.format(row='NEW')} END"
    ),
    "artifacts_bytes_deleted": f"AFTER DELETE ON artifacts BEGIN {_TAKE.format(row='OLD')} END",
}
_POSTGRES_FUNCTION = "farm_storage_count_artifact_bytes"
_POSTGRES_TRIGGER = "artifacts_bytes_counted"


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
        AFTER INSERT OR UPDATE OF tenant, size_bytes OR DELETE ON artifacts
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION {_POSTGRES_FUNCTION}()
        """
    )


def upgrade() -> None:
    op.create_table(
        "tenant_artifact_bytes",
        sa.Column("tenant", sa.String(128), primary_key=True),
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
        "INSERT INTO tenant_artifact_bytes (tenant, stored_bytes) "
        "SELECT tenant, SUM(size_bytes) FROM artifacts GROUP BY tenant"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {_POSTGRES_TRIGGER} ON artifacts")
        op.execute(f"DROP FUNCTION {_POSTGRES_FUNCTION}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("tenant_artifact_bytes")
