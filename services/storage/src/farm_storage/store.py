"""Artifact metadata in SQL: lookups scoped to a tenant, keyset pages, upserts, deletes."""

import contextlib
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from farm_core.db import Database, newest_first, utcnow
from farm_core.errors import FailedPrecondition, NotFound
from farm_core.paging import Cursor
from farm_storage.models import ArtifactRow

MIGRATIONS = "farm_storage:migrations"
VERSION_TABLE = "alembic_version_storage"

artifacts = cast(Table, ArtifactRow.__table__)


@dataclass(frozen=True)
class ArtifactRecord:
    """An artifact's metadata as stored."""

    id: str
    tenant: str
    task_id: str
    name: str
    kind: str
    content_type: str
    size_bytes: int
    sha256: str
    object_key: str
    create_time: dt.datetime


@dataclass(frozen=True)
class ArtifactContent:
    """What an upload stores: which artifact, and a digest of its bytes."""

    tenant: str
    task_id: str
    name: str
    kind: str
    content_type: str
    size_bytes: int
    sha256: str
    object_key: str


def owned_by_another_tenant(task_id: str, name: str) -> FailedPrecondition:
    """The error for an upload over another tenant's artifact."""
    return FailedPrecondition(f"artifact {name!r} of task {task_id!r} belongs to another tenant")


def new_artifact_id() -> str:
    """A fresh artifact id: `art_` and 24 hex digits."""
    return f"art_{secrets.token_hex(12)}"


class ArtifactStore(Database):
    """The artifacts table of one database."""

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url, MIGRATIONS, VERSION_TABLE)

    async def get(self, tenant: str, artifact_id: str) -> ArtifactRecord:
        """The tenant's artifact `artifact_id`; NotFound if absent or another tenant's."""
        async with self.engine.connect() as connection:
            return await _get(connection, tenant, artifact_id)

    async def find(self, task_id: str, name: str) -> ArtifactRecord | None:
        """The artifact `name` of `task_id`, of any tenant, or None."""
        query = select(artifacts).where(artifacts.c.task_id == task_id, artifacts.c.name == name)
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else ArtifactRecord(**row._asdict())

    async def stored_bytes(self, tenant: str) -> int:
        """The bytes of all of `tenant`'s artifacts."""
        query = select(func.coalesce(func.sum(artifacts.c.size_bytes), 0)).where(
            artifacts.c.tenant == tenant
        )
        async with self.engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one())

    async def page(
        self, tenant: str, task_id: str, size: int, after: Cursor | None
    ) -> list[ArtifactRecord]:
        """Up to `size` of the tenant's artifacts, newest first, after `after`."""
        query = select(artifacts).where(artifacts.c.tenant == tenant)
        if task_id:
            query = query.where(artifacts.c.task_id == task_id)
        query = newest_first(query, artifacts.c.create_time, artifacts.c.id, after, size)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [ArtifactRecord(**row._asdict()) for row in rows]

    async def save(self, content: ArtifactContent) -> ArtifactRecord:
        """Stores `content` as a new artifact, or over the one with its (task_id, name).

        Replacing keeps the artifact's id; an artifact of another tenant is never replaced.
        """
        values = {
            "id": new_artifact_id(),
            **asdict(content),
            "create_time": utcnow(),
        }
        async with self.engine.begin() as connection:
            insert = (
                postgresql.insert(artifacts)
                if connection.dialect.name == "postgresql"
                else sqlite.insert(artifacts)
            )
            statement = insert.values(values)
            replaced = {
                column: statement.excluded[column]
                for column in values
                if column not in {"id", "tenant", "task_id", "name"}
            }
            upsert = statement.on_conflict_do_update(
                index_elements=[artifacts.c.task_id, artifacts.c.name],
                set_=replaced,
                where=artifacts.c.tenant == statement.excluded.tenant,
            ).returning(*artifacts.c)
            row = (await connection.execute(upsert)).first()
        if row is None:
            raise owned_by_another_tenant(content.task_id, content.name)
        return ArtifactRecord(**row._asdict())

    @contextlib.asynccontextmanager
    async def deleting(self, tenant: str, artifact_id: str) -> AsyncIterator[ArtifactRecord]:
        """Deletes the tenant's artifact when the block succeeds; NotFound if there is none.

        The row stays if the block raises (say, S3 refused to delete the bytes).
        """
        async with self.engine.begin() as connection:
            record = await _get(connection, tenant, artifact_id, for_update=True)
            await connection.execute(delete(artifacts).where(artifacts.c.id == artifact_id))
            yield record


async def _get(
    connection: AsyncConnection, tenant: str, artifact_id: str, *, for_update: bool = False
) -> ArtifactRecord:
    query = select(artifacts).where(artifacts.c.id == artifact_id, artifacts.c.tenant == tenant)
    if for_update:
        query = query.with_for_update()
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound("artifact", artifact_id)
    return ArtifactRecord(**row._asdict())
