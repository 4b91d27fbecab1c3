"""Bytes of a tenant's quota that its uploads under way hold: made only where they leave room.

One statement adds what the tenant stores (its rows in artifact_totals, less the
artifact the upload replaces) and holds, and inserts the reservation only if the
upload's bytes fit; the caller holds the tenant's lock (tenant_locks), so two
uploads cannot both see the room that one of them takes.
"""

import datetime as dt
import secrets
from typing import Any, cast

from sqlalchemy import BigInteger, String, Table, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from farm_core.db import UtcDateTime, utcnow
from farm_core.errors import ResourceExhausted
from farm_storage.models import ArtifactRow, ArtifactTotalsRow, ByteReservationRow
from farm_storage.quotas import check_byte_quota

artifacts = cast(Table, ArtifactRow.__table__)
reservations = cast(Table, ByteReservationRow.__table__)
totals = cast(Table, ArtifactTotalsRow.__table__)

# Far longer than an upload of the largest artifact takes; a reservation left by a
# storage process that died stops counting after it.
RESERVATION_SECONDS = 600.0

# What the tenant's uploads under way hold: their reservations not lapsed at `now`.
_HELD_BYTES = (
    select(func.coalesce(func.sum(reservations.c.size_bytes), 0))
    .where(
        reservations.c.tenant == bindparam("tenant"),
        reservations.c.expire_time > bindparam("now"),
    )
    .scalar_subquery()
)
# The tenant's stored bytes but the artifact the upload replaces (its task_id and name):
# its totals (a row per kind) and one artifact read by key, however much it stores.
_STORED_BYTES = (
    select(func.sum(totals.c.stored_bytes))
    .where(totals.c.tenant == bindparam("tenant"))
    .scalar_subquery()
)
_REPLACED_BYTES = (
    select(artifacts.c.size_bytes)
    .where(
        artifacts.c.task_id == bindparam("task_id"),
        artifacts.c.name == bindparam("name"),
        artifacts.c.tenant == bindparam("tenant"),
    )
    .scalar_subquery()
)
_KEPT_BYTES = func.coalesce(_STORED_BYTES, 0) - func.coalesce(_REPLACED_BYTES, 0)
_USAGE = select(_KEPT_BYTES, _HELD_BYTES)
_SIZE = bindparam("size_bytes", type_=BigInteger)
_RESERVE = (
    reservations.insert()
    .from_select(
        ["id", "tenant", "size_bytes", "expire_time"],
        select(
            bindparam("id", type_=String),
            bindparam("tenant", type_=String),
            _SIZE,
            bindparam("expire_time", type_=UtcDateTime),
        ).where(bindparam("limit", type_=BigInteger) >= _KEPT_BYTES + _HELD_BYTES + _SIZE),
    )
    .returning(reservations.c.id)
)
_END_LAPSED = delete(reservations).where(
    reservations.c.tenant == bindparam("tenant"), reservations.c.expire_time <= bindparam("now")
)


async def reserve(
    connection: AsyncConnection, tenant: str, task_id: str, name: str, size_bytes: int, limit: int
) -> str | ResourceExhausted:
    """Holds `size_bytes` of `tenant`'s quota `limit` for an upload of `name` of `task_id`.

    What the tenant stores (but the artifact the upload replaces) and what its other
    uploads hold must leave room. Answers the reservation's id; without room, the
    refusal to raise once the transaction has committed: it clears the tenant's lapsed
    reservations (they count no more, and are cleared only here, off the common path).
    """
    now = utcnow()
    usage = {"tenant": tenant, "task_id": task_id, "name": name, "now": now}
    reservation = f"res_{secrets.token_hex(12)}"
    values = {
        **usage,
        "id": reservation,
        "size_bytes": size_bytes,
        "limit": limit,
        "expire_time": now + dt.timedelta(seconds=RESERVATION_SECONDS),
    }
    while True:
        if (await connection.execute(_RESERVE, values)).first() is not None:
            return reservation
        refused = await _why_refused(connection, usage, size_bytes, limit)
        if refused is not None:
            await connection.execute(_END_LAPSED, usage)
            return refused


async def _why_refused(
    connection: AsyncConnection, usage: dict[str, Any], size_bytes: int, limit: int
) -> ResourceExhausted | None:
    """Why a reservation found no room: the tenant's usage, read again for the message.

    None if there is room now: on PostgreSQL a save that replaced an artifact by a
    smaller one may have committed between the two statements.
    """
    stored, in_flight = (int(n) for n in (await connection.execute(_USAGE, usage)).one())
    try:
        check_byte_quota(usage["tenant"], stored, size_bytes, limit, in_flight)
    except ResourceExhausted as error:
        return error
    return None
