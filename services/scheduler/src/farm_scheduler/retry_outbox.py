"""NATS operations that failed, kept as SQL rows and retried in rounds until they go.

A row names the operation and carries `try_time`, when it was kept or last tried.
A round retries the least lately tried first, a batch at most, and stops at the
first that fails again (NATS is still away), which goes to the back: one that NATS
keeps refusing holds up no other. A row is dropped once its operation went through,
and only the version of it that was tried (`identity`), not a newer one kept for
the same object meanwhile. Kept in SQL, the rows outlive a restart and any replica
retries them. Used by `end_marks` and `queue_messages`.
"""

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence

from sqlalchemy import ColumnElement, RowMapping, Table, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_core.db import utcnow

RETRY_BATCH = 100
"""Kept rows retried in one round at most, least lately tried first."""


class Kept(enum.Enum):
    """What keeping a row came to."""

    KEPT = "kept"
    CLASHED = "clashed"
    """A row with its key is kept already, or was at the same time by another replica: it stands."""


Attempt = Callable[[RowMapping], Awaitable[bool]]
"""Makes a kept row's operation again: True if it went, False if it failed again."""


class RetryOutbox:
    """The kept rows of one table with a `try_time` column, and the rounds that retry them."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        identity: Sequence[str],
        batch: int = RETRY_BATCH,
    ) -> None:
        """`identity`: the columns whose values tell a kept row from a newer one replacing it."""
        self._engine = engine
        self._table = table
        self._identity = [table.c[name] for name in identity]
        self._batch = batch

    async def keep(
        self, row: Mapping[str, object], replacing: ColumnElement[bool] | None = None
    ) -> Kept:
        """Keeps `row`, tried now, for retry; with `replacing`, in place of the rows it matches.

        A storage error other than the key's clash is raised.
        """
        try:
            async with self._engine.begin() as connection:
                if replacing is not None:
                    await connection.execute(delete(self._table).where(replacing))
                await connection.execute(insert(self._table).values({**row, "try_time": utcnow()}))
        except IntegrityError:
            return Kept.CLASHED
        return Kept.KEPT

    async def drop(self, where: ColumnElement[bool]) -> None:
        """Drops the kept rows `where` matches, all versions: an operation made since replaces them.

        Storage errors are raised.
        """
        # Mostly there is none: a read takes no write lock (SQLite's is the database's).
        async with self._engine.connect() as connection:
            query = select(*self._table.primary_key.columns).where(where).limit(1)
            if (await connection.execute(query)).first() is None:
                return
        async with self._engine.begin() as connection:
            await connection.execute(delete(self._table).where(where))

    async def retry(self, attempt: Attempt) -> int:
        """One round: `attempt` on up to a batch of rows, least lately tried first; how many went.

        It stops at the first that fails again, whose try_time becomes now: it goes to
        the back. A row that went is dropped unless a newer version replaced it
        meanwhile. Storage errors, and those `attempt` raises, are raised.
        """
        query = select(self._table).order_by(self._table.c.try_time).limit(self._batch)
        async with self._engine.connect() as connection:
            kept = (await connection.execute(query)).mappings().all()
        went = 0
        for row in kept:
            this_version = and_(*(column == row[column.name] for column in self._identity))
            if not await attempt(row):
                async with self._engine.begin() as connection:
                    await connection.execute(
                        update(self._table).where(this_version).values(try_time=utcnow())
                    )
                break
            async with self._engine.begin() as connection:
                await connection.execute(delete(self._table).where(this_version))
            went += 1
        return went
