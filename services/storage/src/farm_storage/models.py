"""The storage service's tables: artifacts' metadata, and bytes reserved by uploads in flight."""

import datetime as dt

from sqlalchemy import BigInteger, Index, String, UniqueConstraint
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


class ByteReservationRow(Base):
    """Bytes an upload in flight counts against its tenant's quota until its row is saved."""

    __tablename__ = "byte_reservations"
    __table_args__ = (Index("ix_byte_reservations_tenant", "tenant"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # A reservation whose upload died with its process stops counting then.
    expire_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
