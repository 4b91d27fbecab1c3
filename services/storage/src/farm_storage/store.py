"""Artifact metadata in SQL, and the bytes uploads under way reserve of a tenant's quota.

Lookups scoped to a tenant, keyset pages, upserts, deletes; reservations keep
concurrent uploads within a byte quota.
"""

import contextlib
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any, NoReturn, cast

from sqlalchemy import Table, and_, bindparam, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from farm_core.db import Database, newest_first, utcnow
from farm_core.errors import FailedPrecondition, NotFound, ResourceExhausted
from farm_core.paging import Cursor
from farm_core.settings import DEFAULT_MIGRATION_LOCK_TIMEOUT_SECONDS
from farm_core.tenant_locks import (
    ATTEMPTS_NAMESPACE,
    BYTES_NAMESPACE,
    TenantQuotaLock,
    lock_tenant_in_transaction,
)
from farm_storage.attempts import AttemptFence, check_fence
from farm_storage.migrations import NEWEST_REVISION
from farm_storage.models import ArtifactRow
from farm_storage.reservations import reservations, reserve, totals

MIGRATIONS = "farm_storage:migrations"
VERSION_TABLE = "alembic_version_storage"

artifacts = cast(Table, ArtifactRow.__table__)
# Statements of every upload and download, built once (SQLAlchemy then finds their
# compiled form by the statement's memoised cache key).
_BY_TASK_AND_NAME = select(artifacts).where(
    artifacts.c.task_id == bindparam("task_id"), artifacts.c.name == bindparam("name")
)
_OF_TENANT = select(artifacts).where(
    artifacts.c.id == bindparam("artifact_id"), artifacts.c.tenant == bindparam("tenant")
)
_OF_TENANT_FOR_UPDATE = _OF_TENANT.with_for_update()
_TOTALS_BY_KIND = select(
    totals.c.kind, func.sum(totals.c.artifacts), func.sum(totals.c.stored_bytes)
).group_by(totals.c.kind)
_END_RESERVATION = delete(reservations).where(reservations.c.id == bindparam("reservation"))
_NEWEST_ATTEMPT = (
    select(artifacts.c.work_sequence, artifacts.c.attempt)
    .where(artifacts.c.task_id == bindparam("task_id"))
    .order_by(artifacts.c.work_sequence.desc(), artifacts.c.attempt.desc())
    .limit(1)
)
_NEWEST = _NEWEST_ATTEMPT.subquery("newest")
# The task's newest stored attempt with the artifact `name` (NULLs if none): no row when
# the task stored nothing.
_NEWEST_AND_NAMED = select(
    _NEWEST.c.work_sequence.label("newest_work_sequence"),
    _NEWEST.c.attempt.label("newest_attempt"),
    *artifacts.c,
).select_from(
    _NEWEST.outerjoin(
        artifacts,
        and_(artifacts.c.task_id == bindparam("task_id"), artifacts.c.name == bindparam("name")),
    )
)


# A later attempt's artifact of the task, of any name: a fenced upload stores nothing then.
_OVERTAKEN = (
    select(artifacts.c.id)
    .where(
        artifacts.c.task_id == bindparam("task_id"),
        or_(
            artifacts.c.work_sequence > bindparam("work_sequence"),
            and_(
                artifacts.c.work_sequence == bindparam("work_sequence"),
                artifacts.c.attempt > bindparam("attempt"),
            ),
        ),
    )
    .exists()
)


def _upsert(dialect: Any, fenced: bool) -> Any:
    """Inserts an artifact (values as parameters), or replaces the same tenant's (task_id, name).

    An artifact of a later attempt is not replaced by an earlier attempt's (see attempts.py);
    an upload that names no attempt replaces as before. `fenced`: nothing is written
    either if a later attempt stored any artifact of the task (the check in the write).
    """
    if fenced:
        values = select(
            *(bindparam(column.name, type_=column.type) for column in artifacts.c)
        ).where(~_OVERTAKEN)
        statement = dialect.insert(artifacts).from_select(list(artifacts.c.keys()), values)
    else:
        statement = dialect.insert(artifacts)
    excluded = statement.excluded
    replaced = {
        column.name: excluded[column.name]
        for column in artifacts.c
        if column.name not in {"id", "tenant", "task_id", "name"}
    }
    not_older = or_(
        excluded.attempt == 0,
        artifacts.c.work_sequence < excluded.work_sequence,
        and_(
            artifacts.c.work_sequence == excluded.work_sequence,
            artifacts.c.attempt <= excluded.attempt,
        ),
    )
    return statement.on_conflict_do_update(
        index_elements=[artifacts.c.task_id, artifacts.c.name],
        set_=replaced,
        where=and_(artifacts.c.tenant == excluded.tenant, not_older),
    ).returning(*artifacts.c)


# By (dialect, whether the upload is fenced, whether it ends a reservation). On
# PostgreSQL the reservation ends in the upsert's own statement (a DML CTE runs whether
# or not the upsert writes: a refused upload's reservation goes anyway); on SQLite in a
# second statement.
_UPSERTS = {
    (name, fenced, False): _upsert(dialect, fenced)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
    for fenced in (False, True)
}
_UPSERTS |= {
    ("postgresql", fenced, True): _UPSERTS["postgresql", fenced, False].add_cte(
        _END_RESERVATION.cte("ended")
    )
    for fenced in (False, True)
}


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
    work_sequence: int = 0
    """With `attempt`, the task's attempt that stored it (attempts.AttemptFence)."""
    attempt: int = 0

    @property
    def fence(self) -> AttemptFence:
        """The task's attempt that stored it; (0, 0) when its upload named none."""
        return AttemptFence(self.work_sequence, self.attempt)


@dataclass(frozen=True, kw_only=True)
class ArtifactRecord(ArtifactContent):
    """An artifact's metadata as stored: its content, and the id and time it was saved with."""

    id: str
    create_time: dt.datetime


@dataclass(frozen=True)
class UploadStart:
    """An upload let through: the artifact it replaces, and the bytes it holds of its quota."""

    earlier: ArtifactRecord | None
    reservation: str | None
    """None when its tenant has no byte quota."""


def owned_by_another_tenant(task_id: str, name: str) -> FailedPrecondition:
    """The error for an upload over another tenant's artifact."""
    return FailedPrecondition(f"artifact {name!r} of task {task_id!r} belongs to another tenant")


def new_artifact_id() -> str:
    """A fresh artifact id: `art_` and 24 hex digits."""
    return f"art_{secrets.token_hex(12)}"


class ArtifactStore(Database):
    """The artifacts table of one database."""

    def __init__(
        self,
        database_url: str,
        migration_lock_timeout_seconds: float = DEFAULT_MIGRATION_LOCK_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(
            database_url,
            MIGRATIONS,
            VERSION_TABLE,
            NEWEST_REVISION,
            migration_lock_timeout_seconds,
        )
        self._quota_lock = TenantQuotaLock(self.engine, BYTES_NAMESPACE)

    async def get(self, tenant: str, artifact_id: str) -> ArtifactRecord:
        """The tenant's artifact `artifact_id`; NotFound if absent or another tenant's."""
        async with self.engine.connect() as connection:
            return await _get(connection, tenant, artifact_id)

    async def find(self, task_id: str, name: str) -> ArtifactRecord | None:
        """The artifact `name` of `task_id`, of any tenant, or None."""
        async with self.engine.connect() as connection:
            where = {"task_id": task_id, "name": name}
            row = (await connection.execute(_BY_TASK_AND_NAME, where)).first()
        return None if row is None else ArtifactRecord(**row._asdict())

    async def newest_attempt(self, task_id: str) -> AttemptFence | None:
        """The latest attempt of `task_id` that stored an artifact, or None if none did."""
        async with self.engine.connect() as connection:
            return await _newest_attempt(connection, task_id)

    async def start_upload(
        self, tenant: str, task_id: str, name: str, fence: AttemptFence, size_bytes: int, limit: int
    ) -> UploadStart:
        """Checks an upload of `name` of `task_id`, and holds its bytes of `tenant`'s quota `limit`.

        The artifact it replaces must be `tenant`'s, and its attempt `fence` must not be
        overtaken (StaleAttempt). With a byte quota (`limit`; 0 is none), under the
        tenant's lock, what the tenant stores (less the artifact the upload replaces)
        and what its other uploads hold must leave room for `size_bytes`, else
        ResourceExhausted. Pass the reservation to save(), or to release() if the
        upload fails.
        """
        where = {"task_id": task_id, "name": name}
        if not limit:
            async with self.engine.connect() as connection:
                return UploadStart(await _check_upload(connection, tenant, fence, where), None)
        async with self._quota_lock.transaction(tenant) as connection:
            earlier = await _check_upload(connection, tenant, fence, where)
            reserved = await reserve(connection, tenant, task_id, name, size_bytes, limit)
        if isinstance(reserved, ResourceExhausted):
            raise reserved
        return UploadStart(earlier, reserved)

    async def release(self, reservation: str) -> None:
        """Gives back the bytes an upload that failed had reserved."""
        async with self.engine.begin() as connection:
            await connection.execute(delete(reservations).where(reservations.c.id == reservation))

    async def stored_by_kind(self) -> dict[str, tuple[int, int]]:
        """Every tenant's artifacts by kind: (how many, their bytes), from their totals."""
        async with self.engine.connect() as connection:
            rows = await connection.execute(_TOTALS_BY_KIND)
            return {str(kind): (int(count), int(size)) for kind, count, size in rows}

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

    async def save(
        self, content: ArtifactContent, reservation: str | None = None
    ) -> ArtifactRecord:
        """Stores `content` as a new artifact, or over the one with its (task_id, name).

        Replacing keeps the artifact's id; an artifact of another tenant is never replaced.
        An upload of an attempt that a later attempt of the task has overtaken (one that
        stored an artifact) stores nothing: StaleAttempt. The `reservation` its upload
        held ends in the same transaction.
        """
        values = {
            "id": new_artifact_id(),
            **asdict(content),
            "create_time": utcnow(),
        }
        fenced = content.fence.checked
        async with self.engine.begin() as connection:
            dialect = connection.dialect.name
            if fenced:
                # On PostgreSQL, replicas check and write one task's uploads in turn (on
                # SQLite the one connection does); the upsert checks the fence.
                await lock_tenant_in_transaction(connection, content.task_id, ATTEMPTS_NAMESPACE)
            ending = reservation is not None and dialect == "postgresql"
            upsert = _UPSERTS[dialect, fenced, ending]
            parameters = {**values, "reservation": reservation} if ending else values
            row = (await connection.execute(upsert, parameters)).first()
            if row is not None and reservation is not None and not ending:
                await connection.execute(_END_RESERVATION, {"reservation": reservation})
        if row is None:
            await self._refuse_replacement(content)
        return ArtifactRecord(**row._asdict())

    async def _refuse_replacement(self, content: ArtifactContent) -> NoReturn:
        """Why the upsert of `content` stored nothing: another tenant's, or a later attempt's."""
        check_fence(content.task_id, content.fence, await self.newest_attempt(content.task_id))
        existing = await self.find(content.task_id, content.name)
        if existing is not None and existing.tenant == content.tenant:
            # Stored by a later attempt between our check and our upsert.
            check_fence(content.task_id, content.fence, existing.fence)
        raise owned_by_another_tenant(content.task_id, content.name)

    @contextlib.asynccontextmanager
    async def deleting(self, tenant: str, artifact_id: str) -> AsyncIterator[ArtifactRecord]:
        """Deletes the tenant's artifact when the block succeeds; NotFound if there is none.

        The row stays if the block raises (say, the scheduler did not confirm the
        cache eviction) or the commit fails.
        """
        async with self.engine.begin() as connection:
            record = await _get(connection, tenant, artifact_id, for_update=True)
            await connection.execute(delete(artifacts).where(artifacts.c.id == artifact_id))
            yield record


async def _newest_attempt(connection: AsyncConnection, task_id: str) -> AttemptFence | None:
    row = (await connection.execute(_NEWEST_ATTEMPT, {"task_id": task_id})).first()
    return None if row is None else AttemptFence(int(row.work_sequence), int(row.attempt))


async def _check_upload(
    connection: AsyncConnection, tenant: str, fence: AttemptFence, where: dict[str, str]
) -> ArtifactRecord | None:
    """The artifact an upload replaces, if any; refused if another tenant's or its attempt stale.

    One statement reads both the artifact and, for an upload that names its attempt,
    the task's newest stored attempt.
    """
    newest, fields = None, None
    if not fence.checked:
        row = (await connection.execute(_BY_TASK_AND_NAME, where)).first()
        fields = None if row is None else row._asdict()
    elif (row := (await connection.execute(_NEWEST_AND_NAMED, where)).first()) is not None:
        fields = row._asdict()
        newest = AttemptFence(
            int(fields.pop("newest_work_sequence")), int(fields.pop("newest_attempt"))
        )
        fields = None if fields["id"] is None else fields
    earlier = None if fields is None else ArtifactRecord(**fields)
    if earlier is not None and earlier.tenant != tenant:
        raise owned_by_another_tenant(where["task_id"], where["name"])
    # Refused before any byte is written; save() checks again as it writes the row.
    check_fence(where["task_id"], fence, newest)
    return earlier


async def _get(
    connection: AsyncConnection, tenant: str, artifact_id: str, *, for_update: bool = False
) -> ArtifactRecord:
    query = _OF_TENANT_FOR_UPDATE if for_update else _OF_TENANT
    row = (await connection.execute(query, {"artifact_id": artifact_id, "tenant": tenant})).first()
    if row is None:
        raise NotFound("artifact", artifact_id)
    return ArtifactRecord(**row._asdict())
