"""The storage service's tables: artifacts, bytes stored and reserved, baselines, profiles."""

import datetime as dt

from sqlalchemy import JSON, BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from farm_core.db import UtcDateTime


class Base(DeclarativeBase):
    """The storage service's SQLAlchemy metadata."""


class ArtifactRow(Base):
    """An artifact's metadata; its bytes are the S3 object at `object_key`."""

    __tablename__ = "artifacts"
    __table_args__ = (
        UniqueConstraint("task_id", "name", name="uq_artifacts_task_id_name"),
        Index("ix_artifacts_tenant_create_time_id", "tenant", "create_time", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    task_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(64))
    # The farm.tasks.v1.ArtifactKind value's name, e.g. "ARTIFACT_KIND_SCREENSHOT".
    kind: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(512))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # The task's attempt that stored it (farm_storage.attempts); 0 and 0 when the
    # upload named none.
    work_sequence: Mapped[int] = mapped_column(BigInteger, server_default="0")
    attempt: Mapped[int] = mapped_column(Integer, server_default="0")


class ByteReservationRow(Base):
    """Bytes an upload in flight counts against its tenant's quota until its row is saved."""

    __tablename__ = "byte_reservations"
    __table_args__ = (Index("ix_byte_reservations_tenant", "tenant"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # A reservation whose upload died with its process stops counting then.
    expire_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class ArtifactTotalsRow(Base):
    """A tenant's artifacts of one kind and their bytes: what quotas and gauges read.

    Kept by triggers on `artifacts` (migration 0005), in the transaction of each change; on
    PostgreSQL a change that moves an artifact between two rows takes the smaller key's first
    (migration 0006).
    """

    __tablename__ = "artifact_totals"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    # As ArtifactRow.kind.
    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    artifacts: Mapped[int] = mapped_column(BigInteger)
    stored_bytes: Mapped[int] = mapped_column(BigInteger)


class BaselineRow(Base):
    """The image a tenant's screenshots of one key are compared with; bytes at `object_key`."""

    __tablename__ = "baselines"
    __table_args__ = (
        # The key (name, URL, viewport) as one digest: URLs are too long for some indexes.
        UniqueConstraint("tenant", "key_sha256", name="uq_baselines_tenant_key"),
        Index("ix_baselines_tenant_update_time_id", "tenant", "update_time", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    key_sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    viewport_width: Mapped[int] = mapped_column(Integer)
    viewport_height: Mapped[int] = mapped_column(Integer)
    # The screenshot artifact the image was copied from.
    artifact_id: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(512))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class ProfileRow(Base):
    """A tenant's saved browser profile; its state (Playwright's JSON) is at `object_key`."""

    __tablename__ = "profiles"
    __table_args__ = (
        Index("ix_profiles_tenant_update_time_name", "tenant", "update_time", "name"),
    )

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    cookies: Mapped[int] = mapped_column(Integer)
    # The origins it holds local storage of.
    origins: Mapped[list[str]] = mapped_column(JSON)
    object_key: Mapped[str] = mapped_column(String(512))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
