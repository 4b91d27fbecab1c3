"""Baselines' and profiles' metadata in SQL, every lookup scoped to a tenant.

The rows live in the artifacts' database (one engine, one migration history);
their bytes are S3 objects whose keys the rows hold.
"""

import contextlib
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from farm_core.db import newest_first, utcnow
from farm_core.errors import NotFound, ResourceExhausted
from farm_core.paging import Cursor
from farm_core.saved import BaselineKey
from farm_storage.models import BaselineRow, ProfileRow

baselines = cast(Table, BaselineRow.__table__)
profiles = cast(Table, ProfileRow.__table__)


@dataclass(frozen=True)
class StoredImage:
    """Bytes saved at an S3 key: where, how many, and their digest."""

    object_key: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class BaselineRecord:
    """A baseline's metadata as stored."""

    id: str
    tenant: str
    key_sha256: str
    name: str
    url: str
    viewport_width: int
    viewport_height: int
    artifact_id: str
    size_bytes: int
    sha256: str
    object_key: str
    create_time: dt.datetime
    update_time: dt.datetime


@dataclass(frozen=True)
class ProfileSummary:
    """What a profile's state holds, as its row lists it."""

    size_bytes: int
    sha256: str
    cookies: int
    origins: list[str]
    object_key: str


@dataclass(frozen=True)
class ProfileRecord:
    """A profile's metadata as stored."""

    tenant: str
    name: str
    size_bytes: int
    sha256: str
    cookies: int
    origins: list[str]
    object_key: str
    create_time: dt.datetime
    update_time: dt.datetime


def new_baseline_id() -> str:
    """A fresh baseline id: `bsl_` and 24 hex digits."""
    return f"bsl_{secrets.token_hex(12)}"


class BaselineTable:
    """The baselines table: one row per (tenant, key)."""

    def __init__(self, engine: AsyncEngine, max_per_tenant: int) -> None:
        self._engine = engine
        self._max_per_tenant = max_per_tenant

    async def find(self, tenant: str, key: BaselineKey) -> BaselineRecord | None:
        """The tenant's baseline of `key`, or None."""
        query = select(baselines).where(
            baselines.c.tenant == tenant, baselines.c.key_sha256 == key.sha256()
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else BaselineRecord(**row._asdict())

    async def get(self, tenant: str, baseline_id: str) -> BaselineRecord:
        """The tenant's baseline `baseline_id`; NotFound if absent or another tenant's."""
        async with self._engine.connect() as connection:
            return await _baseline(connection, tenant, baseline_id)

    async def create(
        self, baseline_id: str, tenant: str, key: BaselineKey, artifact_id: str, image: StoredImage
    ) -> BaselineRecord | None:
        """Adds the key's baseline; None when the key got one meanwhile.

        ResourceExhausted when the tenant has as many baselines as it may keep.
        """
        now = utcnow()
        values = {
            "id": baseline_id,
            "tenant": tenant,
            "key_sha256": key.sha256(),
            **asdict(key),
            "artifact_id": artifact_id,
            **asdict(image),
            "create_time": now,
            "update_time": now,
        }
        try:
            async with self._engine.begin() as connection:
                held = await _count(connection, baselines, tenant)
                if held >= self._max_per_tenant:
                    raise ResourceExhausted(
                        f"tenant {tenant!r} has {held} baselines, the most it may keep; "
                        "delete some (DeleteBaseline) first"
                    )
                await connection.execute(insert(baselines).values(values))
        except IntegrityError:
            return None
        return BaselineRecord(**values)

    async def replace_image(
        self, tenant: str, baseline_id: str, artifact_id: str, image: StoredImage
    ) -> tuple[BaselineRecord, str]:
        """Points the baseline at a new image; the record and the object key it held before."""
        async with self._engine.begin() as connection:
            before = await _baseline(connection, tenant, baseline_id, for_update=True)
            changes = {"artifact_id": artifact_id, **asdict(image), "update_time": utcnow()}
            await connection.execute(
                update(baselines).where(baselines.c.id == baseline_id).values(changes)
            )
        after = BaselineRecord(**{**asdict(before), **changes})
        return after, before.object_key

    async def page(
        self, tenant: str, name: str, size: int, after: Cursor | None
    ) -> list[BaselineRecord]:
        """Up to `size` of the tenant's baselines (of `name` if set), most recently set first."""
        query = select(baselines).where(baselines.c.tenant == tenant)
        if name:
            query = query.where(baselines.c.name == name)
        query = newest_first(query, baselines.c.update_time, baselines.c.id, after, size)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [BaselineRecord(**row._asdict()) for row in rows]

    @contextlib.asynccontextmanager
    async def deleting(self, tenant: str, baseline_id: str) -> AsyncIterator[BaselineRecord]:
        """Deletes the tenant's baseline when the block succeeds; NotFound if there is none."""
        async with self._engine.begin() as connection:
            record = await _baseline(connection, tenant, baseline_id, for_update=True)
            await connection.execute(delete(baselines).where(baselines.c.id == baseline_id))
            yield record


class ProfileTable:
    """The profiles table: one row per (tenant, name)."""

    def __init__(self, engine: AsyncEngine, max_per_tenant: int) -> None:
        self._engine = engine
        self._max_per_tenant = max_per_tenant

    async def get(self, tenant: str, name: str) -> ProfileRecord:
        """The tenant's profile `name`; NotFound if it has none of that name."""
        async with self._engine.connect() as connection:
            return await _profile(connection, tenant, name)

    async def save(
        self, tenant: str, name: str, summary: ProfileSummary
    ) -> tuple[ProfileRecord, str]:
        """Adds or replaces the tenant's profile `name`; the record and its earlier object key.

        The key is "" for a new profile; a new one past the tenant's most is ResourceExhausted.
        """
        try:
            return await self._save(tenant, name, summary)
        except IntegrityError:
            # Another save made the profile between our read and our insert: replace it.
            return await self._save(tenant, name, summary)

    async def _save(
        self, tenant: str, name: str, summary: ProfileSummary
    ) -> tuple[ProfileRecord, str]:
        now = utcnow()
        async with self._engine.begin() as connection:
            query = select(profiles).where(profiles.c.tenant == tenant, profiles.c.name == name)
            before = (await connection.execute(query.with_for_update())).first()
            if before is not None:
                await connection.execute(
                    update(profiles)
                    .where(profiles.c.tenant == tenant, profiles.c.name == name)
                    .values(**asdict(summary), update_time=now)
                )
                created = ProfileRecord(**before._asdict()).create_time
                return (
                    ProfileRecord(
                        tenant, name, **asdict(summary), create_time=created, update_time=now
                    ),
                    str(before.object_key),
                )
            held = await _count(connection, profiles, tenant)
            if held >= self._max_per_tenant:
                raise ResourceExhausted(
                    f"tenant {tenant!r} has {held} profiles, the most it may keep; "
                    "delete some (DeleteProfile) first"
                )
            record = ProfileRecord(
                tenant, name, **asdict(summary), create_time=now, update_time=now
            )
            await connection.execute(insert(profiles).values(asdict(record)))
        return record, ""

    async def page(self, tenant: str, size: int, after: Cursor | None) -> list[ProfileRecord]:
        """Up to `size` of the tenant's profiles, most recently saved first."""
        query = select(profiles).where(profiles.c.tenant == tenant)
        query = newest_first(query, profiles.c.update_time, profiles.c.name, after, size)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [ProfileRecord(**row._asdict()) for row in rows]

    @contextlib.asynccontextmanager
    async def deleting(self, tenant: str, name: str) -> AsyncIterator[ProfileRecord]:
        """Deletes the tenant's profile when the block succeeds; NotFound if there is none."""
        async with self._engine.begin() as connection:
            record = await _profile(connection, tenant, name, for_update=True)
            await connection.execute(
                delete(profiles).where(profiles.c.tenant == tenant, profiles.c.name == name)
            )
            yield record


async def _count(connection: AsyncConnection, table: Table, tenant: str) -> int:
    query = select(func.count()).select_from(table).where(table.c.tenant == tenant)
    return int((await connection.execute(query)).scalar_one())


async def _baseline(
    connection: AsyncConnection, tenant: str, baseline_id: str, *, for_update: bool = False
) -> BaselineRecord:
    query: Any = select(baselines).where(
        baselines.c.id == baseline_id, baselines.c.tenant == tenant
    )
    if for_update:
        query = query.with_for_update()
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound("baseline", baseline_id)
    return BaselineRecord(**row._asdict())


async def _profile(
    connection: AsyncConnection, tenant: str, name: str, *, for_update: bool = False
) -> ProfileRecord:
    query: Any = select(profiles).where(profiles.c.tenant == tenant, profiles.c.name == name)
    if for_update:
        query = query.with_for_update()
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound("profile", name)
    return ProfileRecord(**row._asdict())
