"""The tenants' webhook secrets: made on first use, rotated on request, kept in SQL.

A secret is stored as it is (an HMAC key cannot be kept hashed); whoever can read
the scheduler's database can sign callbacks.
"""

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from farm.tasks.v1 import tasks_pb2
from farm_core.timestamps import to_timestamp
from farm_scheduler.models import WebhookSecretRow

webhook_secrets = cast(Table, WebhookSecretRow.__table__)
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh secret: "whsec_" and 43 URL-safe characters (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class TenantSecret:
    """A tenant's current secret, and the previous one while it still signs."""

    secret: str
    create_time: dt.datetime
    previous_secret: str = ""
    previous_valid_until: dt.datetime | None = None

    def signing(self, now: dt.datetime) -> list[str]:
        """The secrets that sign a callback sent at `now`: the current, then the previous."""
        valid = self.previous_valid_until
        if self.previous_secret and valid is not None and now < valid:
            return [self.secret, self.previous_secret]
        return [self.secret]

    def to_proto(self) -> tasks_pb2.WebhookSecret:
        """The API's view of the secret."""
        answer = tasks_pb2.WebhookSecret(
            secret=self.secret, create_time=to_timestamp(self.create_time)
        )
        if self.previous_secret and self.previous_valid_until is not None:
            answer.previous_valid_until.CopyFrom(to_timestamp(self.previous_valid_until))
        return answer


class WebhookSecrets:
    """The webhook_secrets table: one row per tenant that has a secret."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, tenant: str, now: dt.datetime) -> TenantSecret:
        """The tenant's secret, made now if it has none."""
        async with self._engine.connect() as connection:
            found = await _read(connection, tenant)
        if found is not None:
            return found
        made = TenantSecret(new_secret(), now)
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(webhook_secrets).values(
                        tenant=tenant, secret=made.secret, create_time=now
                    )
                )
        except IntegrityError:
            # A concurrent first use made it: that one stands.
            async with self._engine.connect() as connection:
                found = await _read(connection, tenant)
            if found is None:
                raise
            return found
        return made

    async def rotate(self, tenant: str, now: dt.datetime, overlap: dt.timedelta) -> TenantSecret:
        """Replaces the tenant's secret; the old one still signs for `overlap`."""
        current = await self.get(tenant, now)
        rotated = TenantSecret(new_secret(), now, current.secret, now + overlap)
        async with self._engine.begin() as connection:
            await connection.execute(
                update(webhook_secrets)
                .where(webhook_secrets.c.tenant == tenant)
                .values(
                    secret=rotated.secret,
                    create_time=now,
                    previous_secret=rotated.previous_secret,
                    previous_valid_until=rotated.previous_valid_until,
                )
            )
        return rotated


async def _read(connection: AsyncConnection, tenant: str) -> TenantSecret | None:
    query = select(webhook_secrets).where(webhook_secrets.c.tenant == tenant)
    row = (await connection.execute(query)).first()
    if row is None:
        return None
    return TenantSecret(row.secret, row.create_time, row.previous_secret, row.previous_valid_until)
