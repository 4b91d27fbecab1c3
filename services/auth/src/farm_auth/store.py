"""Tenants and API keys in SQL: create, list, look up by hash, revoke, re-key."""

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from farm_auth.keys import KeyRecord
from farm_auth.models import ApiKeyRow, TenantRow
from farm_core.db import Database

MIGRATIONS = "farm_auth:migrations"
VERSION_TABLE = "alembic_version_auth"

tenants = cast(Table, TenantRow.__table__)
api_keys = cast(Table, ApiKeyRow.__table__)


def _record(row: Row[Any]) -> KeyRecord:
    values = row._asdict()
    return KeyRecord(**{**values, "scopes": tuple(values["scopes"])})


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
    }


class KeyStore(Database):
    """The tenants and api_keys tables of one database."""

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url, MIGRATIONS, VERSION_TABLE)

    async def create(self, record: KeyRecord) -> None:
        """Stores a new key, creating its tenant if it does not exist yet."""
        async with self.engine.begin() as connection:
            await _ensure_tenant(connection, record.tenant, record.create_time)
            await connection.execute(api_keys.insert().values(_values(record)))

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
        """The key whose secret hashes to `secret_hash`, or None."""
        query = select(api_keys).where(api_keys.c.secret_hash == secret_hash)
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


async def _ensure_tenant(connection: AsyncConnection, tenant: str, now: dt.datetime) -> None:
    insert = (
        postgresql.insert(tenants)
        if connection.dialect.name == "postgresql"
        else sqlite.insert(tenants)
    )
    await connection.execute(
        insert.values(name=tenant, create_time=now).on_conflict_do_nothing(
            index_elements=[tenants.c.name]
        )
    )
