"""Tenants and API keys in SQL: create, list, look up by hash, revoke, re-key."""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from farm_auth.keys import KeyRecord
from farm_auth.limits import QuotaSetting, RateSetting
from farm_auth.migrations import NEWEST_REVISION
from farm_auth.models import ApiKeyRow, TenantRow, dialect_insert
from farm_core.db import Database
from farm_core.settings import DEFAULT_MIGRATION_LOCK_TIMEOUT_SECONDS

MIGRATIONS = "farm_auth:migrations"
VERSION_TABLE = "alembic_version_auth"

tenants = cast(Table, TenantRow.__table__)
api_keys = cast(Table, ApiKeyRow.__table__)


QUOTA_COLUMNS = (
    "max_queued_tasks",
    "max_running_tasks",
    "max_artifact_bytes",
    "max_open_sessions",
)

# Built once: Check looks a busy key up again each time its cache entry lapses.
_BY_HASH = (
    select(api_keys, *(tenants.c[column] for column in QUOTA_COLUMNS))
    .join(tenants, tenants.c.name == api_keys.c.tenant)
    .where(
        or_(
            api_keys.c.secret_hash == bindparam("secret_hash"),
            api_keys.c.previous_secret_hash == bindparam("secret_hash"),
        )
    )
)


@dataclass(frozen=True)
class TenantRecord:
    """A tenant as stored, with the quotas an admin set for it."""

    name: str
    create_time: dt.datetime
    quotas: QuotaSetting


def _quota_setting(values: dict[str, Any]) -> QuotaSetting:
    return QuotaSetting(**{column: values.pop(column, None) for column in QUOTA_COLUMNS})


def _record(row: Row[Any]) -> KeyRecord:
    values = row._asdict()
    quotas = _quota_setting(values)
    return KeyRecord(**{**values, "scopes": tuple(values["scopes"]), "tenant_quotas": quotas})


def _tenant(row: Row[Any]) -> TenantRecord:
    values = row._asdict()
    quotas = _quota_setting(values)
    return TenantRecord(name=values["name"], create_time=values["create_time"], quotas=quotas)


def _values(record: KeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "tenant": record.tenant,
        "name": record.name,
        "scopes": list(record.scopes),
        "secret_hash": record.secret_hash,
        "create_time": record.create_time,
        "expire_time": record.expire_time,
        "revoke_time": record.revoke_time,
        "rate_per_second": record.rate_per_second,
        "rate_burst": record.rate_burst,
        "previous_secret_hash": record.previous_secret_hash,
        "previous_secret_expire_time": record.previous_secret_expire_time,
        "idempotency_tenant": record.idempotency_tenant,
        "idempotency_key": record.idempotency_key,
    }


class KeyStore(Database):
    """The tenants and api_keys tables of one database."""

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

    async def create(self, record: KeyRecord) -> KeyRecord | None:
        """Stores a new key, creating its tenant if it does not exist yet; None if stored.

        A key whose idempotency key (of its idempotency tenant) another key holds is
        not stored, nor is its tenant created: that earlier key is returned instead,
        also when a concurrent create took it first.
        """
        insert = dialect_insert(self.engine.dialect, api_keys).values(_values(record))
        if record.idempotency_key is not None:
            insert = insert.on_conflict_do_nothing(
                index_elements=[api_keys.c.idempotency_tenant, api_keys.c.idempotency_key]
            )
        async with self.engine.connect() as connection:
            await _ensure_tenant(connection, record.tenant, record.create_time)
            if (await connection.execute(insert)).rowcount:
                await connection.commit()
                return None
            earlier = select(api_keys).where(
                api_keys.c.idempotency_tenant == record.idempotency_tenant,
                api_keys.c.idempotency_key == record.idempotency_key,
            )
            # Leaving without a commit rolls back the tenant made for this key.
            return _record((await connection.execute(earlier)).one())

    async def list(self, tenant: str | None) -> list[KeyRecord]:
        """The keys of `tenant` (of every tenant for None), newest first."""
        query = select(api_keys)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        query = query.order_by(api_keys.c.create_time.desc(), api_keys.c.id.desc())
        async with self.engine.connect() as connection:
            rows: Sequence[Row[Any]] = (await connection.execute(query)).all()
        return [_record(row) for row in rows]

    async def find_by_hash(self, secret_hash: str) -> KeyRecord | None:
        """The key whose secret, or previous secret, hashes to `secret_hash`; or None.

        The record carries its tenant's quotas.
        """
        async with self.engine.connect() as connection:
            row = (await connection.execute(_BY_HASH, {"secret_hash": secret_hash})).first()
        return None if row is None else _record(row)

    async def find_by_id(self, key_id: str) -> KeyRecord | None:
        """Key `key_id` of any tenant, carrying its tenant's quotas; or None."""
        query = (
            select(api_keys, *(tenants.c[column] for column in QUOTA_COLUMNS))
            .join(tenants, tenants.c.name == api_keys.c.tenant)
            .where(api_keys.c.id == key_id)
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _record(row)

    async def find_named(self, tenant: str, name: str) -> KeyRecord | None:
        """The oldest key of `tenant` named `name`, or None."""
        query = (
            select(api_keys)
            .where(api_keys.c.tenant == tenant, api_keys.c.name == name)
            .order_by(api_keys.c.create_time, api_keys.c.id)
            .limit(1)
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _record(row)

    async def revoke(self, key_id: str, tenant: str | None, now: dt.datetime) -> KeyRecord | None:
        """Revokes key `key_id` of `tenant` (of any tenant for None) unless it is already.

        Returns the key as it now stands, or None when there is no such key.
        """
        owned = api_keys.c.id == key_id
        if tenant is not None:
            owned = owned & (api_keys.c.tenant == tenant)
        async with self.engine.begin() as connection:
            await connection.execute(
                update(api_keys)
                .where(owned, api_keys.c.revoke_time.is_(None))
                .values(revoke_time=now)
            )
            row = (await connection.execute(select(api_keys).where(owned))).first()
        return None if row is None else _record(row)

    async def revoked_since(self, since: dt.datetime) -> tuple[str, ...]:
        """The ids of the keys revoked at `since` or later."""
        query = select(api_keys.c.id).where(api_keys.c.revoke_time >= since)
        async with self.engine.connect() as connection:
            return tuple((await connection.execute(query)).scalars())

    async def rotated_since(self, since: dt.datetime) -> tuple[KeyRecord, ...]:
        """The keys not revoked whose old secret's grace ends at `since` or later."""
        query = select(api_keys).where(
            api_keys.c.previous_secret_expire_time >= since, api_keys.c.revoke_time.is_(None)
        )
        async with self.engine.connect() as connection:
            return tuple(_record(row) for row in await connection.execute(query))

    async def rekey(self, key_id: str, secret_hash: str, scopes: Sequence[str]) -> KeyRecord:
        """Gives key `key_id` a new secret and scopes, and makes it valid again (never expires)."""
        async with self.engine.begin() as connection:
            row = (
                await connection.execute(
                    update(api_keys)
                    .where(api_keys.c.id == key_id)
                    .values(
                        secret_hash=secret_hash,
                        scopes=list(scopes),
                        expire_time=None,
                        revoke_time=None,
                    )
                    .returning(*api_keys.c)
                )
            ).one()
        return _record(row)

    async def get(self, key_id: str, tenant: str | None) -> KeyRecord | None:
        """Key `key_id` of `tenant` (of any tenant for None), or None."""
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(api_keys).where(_owned(key_id, tenant)))).first()
        return None if row is None else _record(row)

    async def set_rate(
        self, key_id: str, tenant: str | None, setting: RateSetting
    ) -> KeyRecord | None:
        """Sets the rate limit of key `key_id` of `tenant`; None for no such key or one revoked."""
        return await self._update_key(
            _owned(key_id, tenant) & api_keys.c.revoke_time.is_(None),
            {"rate_per_second": setting.per_second, "rate_burst": setting.burst},
        )

    async def rotate(
        self, key_id: str, tenant: str | None, secret_hash: str, grace_end: dt.datetime
    ) -> KeyRecord | None:
        """Gives key `key_id` the secret `secret_hash`, the old one working until `grace_end`.

        Returns None when there is no such key, or it is revoked.
        """
        owned = _owned(key_id, tenant) & api_keys.c.revoke_time.is_(None)
        async with self.engine.begin() as connection:
            row = (
                await connection.execute(
                    update(api_keys)
                    .where(owned)
                    .values(
                        previous_secret_hash=api_keys.c.secret_hash,
                        previous_secret_expire_time=grace_end,
                        secret_hash=secret_hash,
                    )
                    .returning(*api_keys.c)
                )
            ).first()
        return None if row is None else _record(row)

    async def get_tenant(self, name: str) -> TenantRecord | None:
        """Tenant `name`, or None."""
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(tenants).where(tenants.c.name == name))).first()
        return None if row is None else _tenant(row)

    async def set_quotas(self, name: str, setting: QuotaSetting, now: dt.datetime) -> TenantRecord:
        """Sets the quotas of tenant `name`, creating it if it does not exist yet."""
        async with self.engine.begin() as connection:
            await _ensure_tenant(connection, name, now)
            row = (
                await connection.execute(
                    update(tenants)
                    .where(tenants.c.name == name)
                    .values(
                        max_queued_tasks=setting.max_queued_tasks,
                        max_running_tasks=setting.max_running_tasks,
                        max_artifact_bytes=setting.max_artifact_bytes,
                        max_open_sessions=setting.max_open_sessions,
                    )
                    .returning(*tenants.c)
                )
            ).one()
        return _tenant(row)

    async def _update_key(self, condition: Any, values: dict[str, Any]) -> KeyRecord | None:
        async with self.engine.begin() as connection:
            row = (
                await connection.execute(
                    update(api_keys).where(condition).values(**values).returning(*api_keys.c)
                )
            ).first()
        return None if row is None else _record(row)

    async def set_scopes(self, key_id: str, scopes: Sequence[str]) -> KeyRecord:
        """Replaces the scopes of key `key_id`."""
        async with self.engine.begin() as connection:
            row = (
                await connection.execute(
                    update(api_keys)
                    .where(api_keys.c.id == key_id)
                    .values(scopes=list(scopes))
                    .returning(*api_keys.c)
                )
            ).one()
        return _record(row)


def _owned(key_id: str, tenant: str | None) -> Any:
    """The condition: the key is `key_id`, of `tenant` (of any tenant for None)."""
    owned = api_keys.c.id == key_id
    return owned if tenant is None else owned & (api_keys.c.tenant == tenant)


async def _ensure_tenant(connection: AsyncConnection, tenant: str, now: dt.datetime) -> None:
    insert = dialect_insert(connection.dialect, tenants)
    await connection.execute(
        insert.values(name=tenant, create_time=now).on_conflict_do_nothing(
            index_elements=[tenants.c.name]
        )
    )
