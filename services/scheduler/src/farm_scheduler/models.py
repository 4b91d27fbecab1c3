"""The scheduler's tables: one row per task, the source of truth for its state."""

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from farm_core.db import UtcDateTime

HAS_IDEMPOTENCY_KEY = text("idempotency_key <> ''")
"""Only tasks that carry an idempotency key are unique by it (a partial index).

Lookups by key repeat this condition word for word, so that SQLite uses the index.
"""
# The republisher's query, `published = false`, as each dialect writes it.
_UNPUBLISHED_SQLITE = text("published = 0")
_UNPUBLISHED_POSTGRESQL = text("published = false")


class Base(DeclarativeBase):
    """The scheduler's SQLAlchemy metadata."""


class TaskRow(Base):
    """A task: what was asked (the serialized spec), its state and its outcome."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_tenant_create_time_id", "tenant", "create_time", "id"),
        Index("ix_tasks_tenant_status", "tenant", "status"),
        Index(
            "uq_tasks_tenant_idempotency_key",
            "tenant",
            "idempotency_key",
            unique=True,
            sqlite_where=HAS_IDEMPOTENCY_KEY,
            postgresql_where=HAS_IDEMPOTENCY_KEY,
        ),
        Index(
            "ix_tasks_unpublished",
            "create_time",
            sqlite_where=_UNPUBLISHED_SQLITE,
            postgresql_where=_UNPUBLISHED_POSTGRESQL,
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    # The farm.tasks.v1.TaskStatus value's name, e.g. "TASK_STATUS_QUEUED".
    status: Mapped[str] = mapped_column(String(32))
    # The serialized farm.tasks.v1.TaskSpec, with defaults filled in.
    spec: Mapped[bytes] = mapped_column(LargeBinary)
    # The farm.tasks.v1.Priority value's name, e.g. "PRIORITY_NORMAL".
    priority: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(32))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[str] = mapped_column(String(255))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    start_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finish_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The serialized farm.tasks.v1.TaskResult; empty until the task succeeds.
    result: Mapped[bytes] = mapped_column(LargeBinary)
    error_code: Mapped[str] = mapped_column(String(64))
    error_message: Mapped[str] = mapped_column(Text)
    # Whether JetStream has stored the task's WorkItem.
    published: Mapped[bool] = mapped_column(Boolean)
