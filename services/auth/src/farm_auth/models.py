"""The auth service's tables: tenants, API keys (hashed, never secrets), revoked credentials."""

import datetime as dt

from sqlalchemy import JSON, BigInteger, Dialect, ForeignKey, Index, Integer, String, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from farm_core.db import UtcDateTime
from farm_core.sweep_turns import sweep_leases_table


class Base(DeclarativeBase):
    """The auth service's SQLAlchemy metadata."""


def dialect_insert(dialect: Dialect, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into `table` for `dialect` (PostgreSQL or SQLite), with its ON CONFLICT."""
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class TenantRow(Base):
    """A tenant: every key, task and artifact belongs to one."""

    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # Quotas an admin set; NULL means the farm's default from the settings.
    max_queued_tasks: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_running_tasks: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_artifact_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_open_sessions: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ApiKeyRow(Base):
    """An API key of a tenant; `secret_hash` is the keyed hash its lookups go by."""

    __tablename__ = "api_keys"
    __table_args__ = (
        Index("ix_api_keys_secret_hash", "secret_hash", unique=True),
        Index("ix_api_keys_tenant_create_time", "tenant", "create_time"),
        Index("ix_api_keys_previous_secret_hash", "previous_secret_hash", unique=True),
        # NULLs are distinct: only keys created with an idempotency key are held to it.
        Index("uq_api_keys_idempotency_key", "idempotency_tenant", "idempotency_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(63), ForeignKey("tenants.name"))
    name: Mapped[str] = mapped_column(String(100))
    # A JSON list of scope names, e.g. ["tasks.read", "tasks.write"].
    scopes: Mapped[list[str]] = mapped_column(JSON)
    secret_hash: Mapped[str] = mapped_column(String(64))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expire_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoke_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Rate limit an admin set; NULL means the farm's default from the settings.
    rate_per_second: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rate_burst: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The secret before the last rotation, valid until previous_secret_expire_time.
    previous_secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    previous_secret_expire_time: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True
    )
    # The idempotency key of the CreateApiKey that made it, and the caller's tenant it
    # belongs to (an operator may create keys for another tenant); NULL without one.
    idempotency_tenant: Mapped[str | None] = mapped_column(String(63), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)


class RevokedCredentialRow(Base):
    """A revocation of farm processes' credentials: one by id, or all of a subject's."""

    __tablename__ = "revoked_credentials"

    # "id" or "subject" (farm_core.revocations.RevokedBy).
    revoked_by: Mapped[str] = mapped_column(String(8), primary_key=True)
    # The credential id, or the subject ("agent:pi-3").
    target: Mapped[str] = mapped_column(String(200), primary_key=True)
    # For a subject, its credentials issued up to this time are refused.
    revoke_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # When the revoked credential would have expired; NULL for a subject.
    expire_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


sweep_leases = sweep_leases_table(Base.metadata, "auth_sweep_leases")
"""Whose turn it is to run the audit records' retention purge (farm_core.sweep_turns).
Not the scheduler's `sweep_leases`: auth's and the scheduler's tables may share a database."""
