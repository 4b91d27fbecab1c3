"""Sessions in SQL: reservations under the tenant's quota, reads, pages, closes."""

import datetime as dt
import secrets
from collections.abc import Callable, Iterable
from typing import cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.db import newest_first, utcnow
from farm_core.errors import NotFound
from farm_core.paging import Cursor
from farm_core.quotas import TenantQuotas
from farm_core.sessions import CloseReason
from farm_core.tenant_locks import TenantQuotaLock
from farm_core.trace_context import current_trace_id
from farm_scheduler.models import SessionRow
from farm_scheduler.quotas import quota_reached
from farm_scheduler.sessions.records import (
    ACTIVE,
    CLOSED,
    SessionRecord,
    record_from_row,
    row_values,
)

SESSIONS_NAMESPACE = 0x4653514B  # "FSQK": advisory locks of the sessions quota

sessions = cast(Table, SessionRow.__table__)


def new_session_id() -> str:
    """A fresh session id: "ses_" and 16 hex digits."""
    return f"ses_{secrets.token_hex(8)}"


def check_session_quota(tenant: str, open_sessions: int, quotas: TenantQuotas) -> None:
    """Raises ResourceExhausted naming maxOpenSessions when `tenant` is at it (0 is unlimited)."""
    limit = quotas.max_open_sessions
    if limit and open_sessions >= limit:
        raise quota_reached(
            "maxOpenSessions",
            tenant,
            open_sessions,
            ("open session", "open sessions"),
            limit,
            "close one or ask an operator to raise it",
        )


class ReservationGone(Exception):
    """The session's reservation is no more: no agent may take it now."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id} is no longer being placed")
        self.session_id = session_id


class SessionStore:
    """The sessions table (in the scheduler's database)."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._engine = engine
        self._clock = clock
        self._quota_lock = TenantQuotaLock(engine, SESSIONS_NAMESPACE)

    async def reserve(
        self,
        tenant: str,
        spec: sessions_pb2.SessionSpec,
        quotas: TenantQuotas | None,
    ) -> SessionRecord:
        """Stores a new ACTIVE session not yet placed on an agent, within the tenant's quota."""
        now = self._clock()
        record = SessionRecord(
            id=new_session_id(),
            tenant=tenant,
            state=ACTIVE,
            spec=spec,
            agent_id="",
            create_time=now,
            expire_time=now + dt.timedelta(seconds=spec.max_lifetime_seconds),
            # The call's trace, which the agent's session.open continues.
            trace_id=current_trace_id(),
        )
        async with self._quota_lock.transaction(tenant) as connection:
            if quotas is not None:
                check_session_quota(tenant, await _open_count(connection, tenant), quotas)
            await connection.execute(insert(sessions).values(**row_values(record)))
        return record

    async def placed(self, record: SessionRecord, agent_id: str) -> SessionRecord:
        """The reserved session, now held by `agent_id`.

        ReservationGone if the reservation is no more: the sweep forgot it as too old.
        """
        async with self._engine.begin() as connection:
            changed = await connection.execute(
                update(sessions)
                .where(sessions.c.id == record.id, _unplaced())
                .values(agent_id=agent_id)
                .returning(sessions.c.id)
            )
            if changed.first() is None:
                raise ReservationGone(record.id)
        return await self.get(record.tenant, record.id)

    async def forget(self, record: SessionRecord) -> None:
        """Removes a reservation that no agent could take."""
        async with self._engine.begin() as connection:
            await connection.execute(delete(sessions).where(sessions.c.id == record.id))

    async def forget_reservations(self, created_before: dt.datetime) -> list[SessionRecord]:
        """Removes the reservations (no agent yet) made before `created_before`; the removed.

        One statement: each is removed once, however many replicas try at once
        (PostgreSQL checks the condition again on a row another transaction changed;
        SQLite writes one at a time), and none that an agent took meanwhile.
        """
        stale = delete(sessions).where(_unplaced(), sessions.c.create_time < created_before)
        async with self._engine.begin() as connection:
            removed = await connection.execute(stale.returning(*sessions.c))
            return [record_from_row(row) for row in removed]

    async def get(self, tenant: str, session_id: str) -> SessionRecord:
        """The tenant's session; NotFound for another tenant's, none, or one still being placed.

        A session still being placed (reserved, no agent yet) has no browser to reach and
        is forgotten if no agent takes it: it is no session yet, as ListSessions shows.
        """
        query = select(sessions).where(
            sessions.c.id == session_id, sessions.c.tenant == tenant, _placed()
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            raise NotFound("session", session_id)
        return record_from_row(row)

    async def page(
        self,
        tenant: str,
        state: "sessions_pb2.SessionState.ValueType",
        size: int,
        after: Cursor | None,
    ) -> list[SessionRecord]:
        """Up to `size` of the tenant's sessions, newest first, after the cursor's.

        A session still being placed is not listed (see `get`).
        """
        query = select(sessions).where(sessions.c.tenant == tenant, _placed())
        if state:
            query = query.where(sessions.c.state == sessions_pb2.SessionState.Name(state))
        query = newest_first(query, sessions.c.create_time, sessions.c.id, after, size)
        async with self._engine.connect() as connection:
            return [record_from_row(row) for row in await connection.execute(query)]

    async def active(self) -> list[SessionRecord]:
        """Every ACTIVE session placed on an agent, of every tenant."""
        query = select(sessions).where(sessions.c.state == ACTIVE, _placed())
        async with self._engine.connect() as connection:
            return [record_from_row(row) for row in await connection.execute(query)]

    async def open_by_agent(self) -> dict[str, set[str]]:
        """The ids of the ACTIVE sessions placed on each agent, by agent id.

        At most as many rows as the farm has places: read for every placement.
        """
        query = select(sessions.c.agent_id, sessions.c.id).where(
            sessions.c.state == ACTIVE, sessions.c.agent_id != ""
        )
        held: dict[str, set[str]] = {}
        async with self._engine.connect() as connection:
            for agent_id, session_id in await connection.execute(query):
                held.setdefault(agent_id, set()).add(session_id)
        return held

    async def by_ids(self, session_ids: Iterable[str]) -> dict[str, SessionRecord]:
        """These sessions' rows, of any tenant, placed or not, by id (a missing id has none)."""
        query = select(sessions).where(sessions.c.id.in_(list(session_ids)))
        async with self._engine.connect() as connection:
            rows = await connection.execute(query)
            return {row.id: record_from_row(row) for row in rows}

    async def count_command(self, record: SessionRecord) -> None:
        """Counts one more command run on the session."""
        async with self._engine.begin() as connection:
            await connection.execute(
                update(sessions)
                .where(sessions.c.id == record.id)
                .values(commands=sessions.c.commands + 1)
            )

    async def close(
        self,
        session_id: str,
        reason: str,
        *,
        close_time: dt.datetime | None = None,
        recording: tasks_pb2.ArtifactRef | None = None,
        commands: int | None = None,
        reported: bool = False,
        agent_id: str | None = None,
    ) -> SessionRecord | None:
        """Marks the session CLOSED; a session already closed keeps its first close.

        `reported` marks the agent's own account of the close, which replaces an
        AGENT_LOST the scheduler recorded first: an agent that drains closes its
        sessions and then removes its heartbeat, and the sweep may see the heartbeat
        gone before the close's event is applied. With `agent_id`, only a session that
        agent holds closes: not one still being placed, which another agent may be
        opening (an agent's close of a browser the scheduler gave up on must not close
        it). Returns the session as it stands, None when there is no such session.
        """
        values: dict[str, object] = {
            "state": CLOSED,
            "close_reason": reason,
            "close_time": close_time or self._clock(),
        }
        if recording is not None and recording.id:
            values["recording"] = recording.SerializeToString()
        if commands is not None:
            values["commands"] = case(
                (sessions.c.commands < commands, commands), else_=sessions.c.commands
            )
        async with self._engine.begin() as connection:
            await connection.execute(
                update(sessions)
                .where(sessions.c.id == session_id, _still_open(reported), _held_by(agent_id))
                .values(**values)
            )
            row = (
                await connection.execute(select(sessions).where(sessions.c.id == session_id))
            ).first()
        return record_from_row(row) if row is not None else None


def _unplaced() -> ColumnElement[bool]:
    """Reservations still being placed: ACTIVE, no agent yet."""
    return and_(sessions.c.state == ACTIVE, sessions.c.agent_id == "")


def _placed() -> ColumnElement[bool]:
    """Rows that are sessions to the API: held by an agent, or closed.

    Not a reservation still being placed (ACTIVE, no agent yet).
    """
    return or_(sessions.c.state != ACTIVE, sessions.c.agent_id != "")


def _held_by(agent_id: str | None) -> ColumnElement[bool]:
    """Sessions `agent_id` may close: any (None), else only the ones it holds."""
    if agent_id is None:
        return true()
    return sessions.c.agent_id == agent_id


def _still_open(reported: bool) -> ColumnElement[bool]:
    """Sessions a close may change: active ones, and for an agent's report, lost ones."""
    if not reported:
        return sessions.c.state == ACTIVE
    return or_(
        sessions.c.state == ACTIVE,
        and_(sessions.c.state == CLOSED, sessions.c.close_reason == CloseReason.AGENT_LOST.value),
    )


async def _open_count(connection: AsyncConnection, tenant: str) -> int:
    query = select(func.count()).where(sessions.c.tenant == tenant, sessions.c.state == ACTIVE)
    return int((await connection.execute(query)).scalar_one())
