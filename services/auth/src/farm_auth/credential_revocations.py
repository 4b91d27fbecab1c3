"""Revoked credentials of farm processes: kept in SQL, held here, published to NATS.

SQL is the source of truth: at start auth reads every revocation still in force
(so its own checks refuse them at once) and publishes them all again to the
bucket, whose entries by id expire with the credential they revoke. The other
services learn of revocations only from the bucket (farm_core.revocation_watch).
"""

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import nats.errors
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from sqlalchemy import Row, Table, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_auth.models import RevokedCredentialRow, dialect_insert
from farm_core.cancel import cancel_and_wait
from farm_core.db import utcnow
from farm_core.errors import InvalidArgument, Unavailable
from farm_core.identity import CredentialRole
from farm_core.nats_access import NatsAccess
from farm_core.nats_link import NatsLink
from farm_core.revocation_watch import revocations_bucket
from farm_core.revocations import (
    Revocation,
    RevokedBy,
    RevokedCredentials,
    credential_id_expiry,
)

log = logging.getLogger(__name__)

revoked_credentials = cast(Table, RevokedCredentialRow.__table__)
PUBLISH_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class RevocationRecord:
    """A revocation as stored."""

    revoked_by: RevokedBy
    target: str
    revoke_time: dt.datetime
    expire_time: dt.datetime | None

    def revocation(self) -> Revocation:
        """What verifiers hold of it."""
        until = self.expire_time if self.revoked_by is RevokedBy.ID else self.revoke_time
        assert until is not None  # an id's revocation always has its expiry
        return Revocation(self.revoked_by, self.target, until.timestamp())


def _record(row: Row[Any]) -> RevocationRecord:
    values = row._asdict()
    return RevocationRecord(
        RevokedBy(values["revoked_by"]),
        values["target"],
        values["revoke_time"],
        values["expire_time"],
    )


def revocation_target(
    credential_id: str, subject: str
) -> tuple[RevokedBy, str, dt.datetime | None]:
    """What a RevokeCredential request names, and when a credential by id expires.

    InvalidArgument names the field at fault.
    """
    if bool(credential_id) == bool(subject):
        raise InvalidArgument("id", "set exactly one of id and subject")
    if credential_id:
        expiry = credential_id_expiry(credential_id)
        if expiry is None:
            raise InvalidArgument("id", f"{credential_id!r} is not a credential id (cred_...)")
        return RevokedBy.ID, credential_id, dt.datetime.fromtimestamp(expiry, dt.UTC)
    role, _, name = subject.partition(":")
    if role not in CredentialRole.__members__.values() or not name or len(subject) > 200:
        roles = "|".join(role.value for role in CredentialRole)
        raise InvalidArgument("subject", f"{subject!r} is not '<{roles}>:<name>'")
    return RevokedBy.SUBJECT, subject, None


class CredentialRevocations:
    """Revokes credentials: SQL first, then this replica's checks, then every service's."""

    def __init__(self, engine: AsyncEngine, access: NatsAccess, replicas: int = 1) -> None:
        self.revoked = RevokedCredentials()
        self._engine = engine
        self._link = NatsLink(access, "auth-revocations")
        self._replicas = replicas
        self._bucket: KeyValue | None = None
        self._ready = asyncio.Event()
        self._publishing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Reads the revocations in force, then publishes them all in the background."""
        records = await self._in_force()
        for record in records:
            self.revoked.add(record.revocation())
        self.revoked.loaded = True
        self._publishing = asyncio.create_task(self._open(records), name="auth-revocations-publish")

    async def close(self) -> None:
        """Stops publishing and closes the NATS connection."""
        task, self._publishing = self._publishing, None
        if task is not None:
            await cancel_and_wait(task, "the publishing of credential revocations")
        await self._link.close()

    async def revoke(self, credential_id: str, subject: str) -> RevocationRecord:
        """Revokes a credential by id, or a subject's; Unavailable if NATS did not take it.

        Stored and in force here even then: asking again publishes it.
        """
        revoked_by, target, expire_time = revocation_target(credential_id, subject)
        record = await self._store(revoked_by, target, utcnow(), expire_time)
        self.revoked.add(record.revocation())
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                # Auth may have just started: its connection to NATS is on its way.
                await self._ready.wait()
                assert self._bucket is not None
                await self._publish(self._bucket, record)
        except TimeoutError as error:
            raise Unavailable(
                "the revocation is stored, but NATS did not take it in time; ask again"
            ) from error
        except nats.errors.Error as error:
            raise Unavailable(f"the revocation is stored but not yet published: {error}") from error
        return record

    async def _open(self, records: Sequence[RevocationRecord]) -> None:
        bucket = await self._link.open(lambda js: revocations_bucket(js, self._replicas))
        for record in records:
            await self._publish(bucket, record)
        self._bucket = bucket
        self._ready.set()
        log.info("published %d credential revocations", len(records))

    async def _publish(self, bucket: KeyValue, record: RevocationRecord) -> None:
        revocation = record.revocation()
        if revocation.by is RevokedBy.SUBJECT:
            await bucket.put(revocation.key, revocation.encode())
            return
        remaining = int(revocation.until - utcnow().timestamp())
        if remaining < 1:
            return
        try:
            # The entry goes when the credential would have: nothing left to refuse.
            await bucket.create(revocation.key, revocation.encode(), msg_ttl=remaining)
        except KeyWrongLastSequenceError:
            return  # published before

    async def _in_force(self) -> list[RevocationRecord]:
        """The revocations that still refuse something; expired ones are dropped."""
        now = utcnow()
        expire = revoked_credentials.c.expire_time
        async with self._engine.begin() as connection:
            await connection.execute(delete(revoked_credentials).where(expire <= now))
            rows = (
                await connection.execute(
                    select(revoked_credentials).where(or_(expire.is_(None), expire > now))
                )
            ).all()
        return [_record(row) for row in rows]

    async def _store(
        self,
        revoked_by: RevokedBy,
        target: str,
        now: dt.datetime,
        expire_time: dt.datetime | None,
    ) -> RevocationRecord:
        """Inserts the revocation; a credential's first stands, a subject's moves to `now`."""
        async with self._engine.begin() as connection:
            insert = dialect_insert(connection.dialect, revoked_credentials)
            values = insert.values(
                revoked_by=revoked_by.value,
                target=target,
                revoke_time=now,
                expire_time=expire_time,
            )
            key = [revoked_credentials.c.revoked_by, revoked_credentials.c.target]
            await connection.execute(
                values.on_conflict_do_nothing(index_elements=key)
                if revoked_by is RevokedBy.ID
                else values.on_conflict_do_update(index_elements=key, set_={"revoke_time": now})
            )
            row = (
                await connection.execute(
                    select(revoked_credentials).where(
                        revoked_credentials.c.revoked_by == revoked_by.value,
                        revoked_credentials.c.target == target,
                    )
                )
            ).one()
        return _record(row)
