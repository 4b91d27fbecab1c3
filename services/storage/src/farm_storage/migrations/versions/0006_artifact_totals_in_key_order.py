"""On PostgreSQL, a change that moves an artifact between rows of totals takes them in key order.

Replacing an artifact by one of another kind (or a write that changes its tenant) takes
one artifact from the old (tenant, kind) row of artifact_totals and adds one to the new
row. Migration 0005's trigger always changed the old row first: two such replacements
in opposite directions at once (pages to screenshots, screenshots to pages) could each
hold one row and wait for the other, and PostgreSQL aborted one as deadlocked (the
upload failed, and was sent again). Now the smaller key's row is changed first, so
every writer takes a tenant's rows in one order and one waits for the other instead.

SQLite needs no change: it has one writer at a time, so no two writes hold rows at once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 0005: the statements of the trigger farm_storage_count_artifacts().
_ADD = """
    INSERT INTO artifact_totals (tenant, kind, artifacts, stored_bytes)
    VALUES (NEW.tenant, NEW.kind, 1, NEW.size_bytes)
    ON CONFLICT (tenant, kind) DO UPDATE
    SET artifacts = artifact_totals.artifacts + 1,
        stored_bytes = artifact_totals.stored_bytes + excluded.stored_bytes;
"""
_TAKE = """
    UPDATE artifact_totals
    SET artifacts = artifacts - 1, stored_bytes = stored_bytes - OLD.size_bytes
    WHERE tenant = OLD.tenant AND kind = OLD.kind;
"""
_IN_KEY_ORDER = f"""
    IF TG_OP = 'UPDATE' AND (NEW.tenant, NEW.kind) < (OLD.tenant, OLD.kind) THEN
        {_ADD}
        {_TAKE}
        RETURN NULL;
    END IF;
"""
_OLD_FIRST = f"""
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        {_TAKE}
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        {_ADD}
    END IF;
    RETURN NULL;
"""


def _replace_function(body: str) -> None:
    """Gives the trigger's function `body`; the trigger (deferred, per row) stays as it is."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION farm_storage_count_artifacts() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN {body} END $$"
        )


def upgrade() -> None:
    _replace_function(_IN_KEY_ORDER + _OLD_FIRST)


def downgrade() -> None:
    _replace_function(_OLD_FIRST)
