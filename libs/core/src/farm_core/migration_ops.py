"""Operations for migration scripts that leave a large table writable on PostgreSQL.

A plain CREATE INDEX holds a SHARE lock on its table until its transaction ends:
every INSERT and UPDATE waits for the whole build. On PostgreSQL these build and
drop indexes CONCURRENTLY instead, outside any transaction (Alembic's autocommit
block commits the migration's statements before it, so those must be safe to run
again: add columns with `add_column_if_missing`). A build that failed or was killed
leaves an INVALID index behind; the next run drops it and builds it again. On SQLite
(one writer at a time anyway) they are the plain operations.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic import op


def on_postgresql() -> bool:
    """Whether the migration runs on PostgreSQL."""
    return bool(op.get_bind().dialect.name == "postgresql")


@contextmanager
def _waiting_as_long_as_needed() -> Iterator[None]:
    # A concurrent build or drop waits for the transactions already running on its
    # table; its lock (SHARE UPDATE EXCLUSIVE) holds off no reader or writer, so the
    # upgrade's lock_timeout, there for locks writers would queue behind, is lifted.
    bind = op.get_bind()
    lock_timeout = bind.scalar(sa.text("SELECT current_setting('lock_timeout')"))
    bind.execute(sa.text("SET lock_timeout = 0"))
    try:
        yield
    finally:
        bind.execute(
            sa.text("SELECT set_config('lock_timeout', :value, false)"), {"value": lock_timeout}
        )


def index_state(name: str) -> str | None:
    """'valid', 'invalid' (a failed concurrent build) or None (no such index)."""
    valid = op.get_bind().scalar(
        sa.text(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = :name AND pg_catalog.pg_table_is_visible(c.oid)"
        ),
        {"name": name},
    )
    if valid is None:
        return None
    return "valid" if valid else "invalid"


def create_index(name: str, table: str, columns: Sequence[str], **options: Any) -> None:
    """Builds an index; on PostgreSQL concurrently, replacing an INVALID leftover of a crash.

    A valid index of this name is taken as built by an earlier run that stopped
    before its migration was recorded.
    """
    if not on_postgresql():
        op.create_index(name, table, list(columns), **options)
        return
    with op.get_context().autocommit_block(), _waiting_as_long_as_needed():
        state = index_state(name)
        if state == "valid":
            return
        if state == "invalid":
            op.drop_index(name, table_name=table, postgresql_concurrently=True)
        op.create_index(name, table, list(columns), postgresql_concurrently=True, **options)


def drop_index(name: str, table: str) -> None:
    """Drops an index if it exists; on PostgreSQL concurrently."""
    if not on_postgresql():
        op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block(), _waiting_as_long_as_needed():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)


def add_column_if_missing(table: str, column: sa.Column[Any]) -> None:
    """Adds a column; on PostgreSQL IF NOT EXISTS, as a re-run after a crash may find it."""
    op.add_column(table, column, if_not_exists=on_postgresql() or None)
