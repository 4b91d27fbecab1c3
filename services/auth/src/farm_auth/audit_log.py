"""The audit_records table: audit records as the auth service keeps them, paged and filtered."""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Index, Row, String, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from farm.audit.v1 import audit_pb2
from farm_auth.models import Base, dialect_insert
from farm_core.db import UtcDateTime, newest_first
from farm_core.paging import Cursor

TEXT_LENGTH = 1000


class AuditRecordRow(Base):
    """One audited call (see farm.audit.v1.AuditRecord)."""

    __tablename__ = "audit_records"
    __table_args__ = (
        Index("ix_audit_records_time_id", "time", "id"),
        Index("ix_audit_records_tenant_time", "tenant", "time"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    tenant: Mapped[str] = mapped_column(String(63))
    key_id: Mapped[str] = mapped_column(String(32))
    rpc: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    target: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    outcome: Mapped[str] = mapped_column(String(32))
    trace_id: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    source: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(String(TEXT_LENGTH))


audit_records = cast(Table, AuditRecordRow.__table__)


@dataclass(frozen=True)
class AuditFilter:
    """Which records a listing returns; None or "" means no condition."""

    tenant: str | None = None
    rpc: str = ""
    outcome: str = ""
    since: dt.datetime | None = None


def _values(record: audit_pb2.AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "time": record.time.ToDatetime(dt.UTC),
        "tenant": record.tenant[:63],
        "key_id": record.key_id[:32],
        "rpc": record.rpc[:TEXT_LENGTH],
        "target": record.target[:TEXT_LENGTH],
        "outcome": record.outcome[:32],
        "trace_id": record.trace_id[:TEXT_LENGTH],
        "source": record.source[:32],
        "message": record.message[:TEXT_LENGTH],
    }


def record_message(row: Row[Any]) -> audit_pb2.AuditRecord:
    """The AuditRecord of a stored row."""
    values = row._asdict()
    record = audit_pb2.AuditRecord(**{k: v for k, v in values.items() if k != "time"})
    record.time.FromDatetime(values["time"])
    return record


def record_cursor(record: audit_pb2.AuditRecord) -> Cursor:
    """Where the page after `record` starts."""
    return Cursor(record.time.ToDatetime(dt.UTC), record.id)


class AuditLog:
    """Writes and reads the audit_records table on the auth service's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        """The auth service's engine, which the log writes on."""
        return self._engine

    async def add(self, records: Sequence[audit_pb2.AuditRecord]) -> None:
        """Stores `records`; one stored already (a redelivery) is left as it is."""
        if not records:
            return
        rows = [_values(r) for r in records]
        statement = dialect_insert(self._engine.dialect, audit_records).on_conflict_do_nothing()
        async with self._engine.begin() as connection:
            await connection.execute(statement, rows)

    async def list(
        self, where: AuditFilter, after: Cursor | None, size: int
    ) -> list[audit_pb2.AuditRecord]:
        """Up to `size` records matching `where`, newest first, after the `after` record."""
        query = select(audit_records)
        if where.tenant is not None:
            query = query.where(audit_records.c.tenant == where.tenant)
        if where.rpc.startswith("/"):
            query = query.where(audit_records.c.rpc == where.rpc)
        elif where.rpc:
            query = query.where(audit_records.c.rpc.endswith(f"/{where.rpc}", autoescape=True))
        if where.outcome:
            query = query.where(audit_records.c.outcome == where.outcome)
        if where.since is not None:
            query = query.where(audit_records.c.time >= where.since)
        query = newest_first(query, audit_records.c.time, audit_records.c.id, after, size)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [record_message(row) for row in rows]

    async def purge(self, before: dt.datetime) -> int:
        """Deletes the records older than `before`; returns how many."""
        async with self._engine.begin() as connection:
            result = await connection.execute(
                delete(audit_records).where(audit_records.c.time < before)
            )
        return int(getattr(result, "rowcount", 0) or 0)
