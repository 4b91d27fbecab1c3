"""Farm-wide sweeps taken in turns: a lease in SQL lets one replica of a service sweep at a time.

Every replica runs the sweep's loop, but a round runs only on the replica that takes the
sweep's row in its service's leases table (the scheduler's `sweep_leases`): one whose
lease has ended, or that it holds already (the first round ever inserts it). While it
sweeps, the holder renews the lease (`lease_seconds` at a time); once its round is done
it holds the lease until its next round is due (`hold_seconds`), so the other replicas'
rounds meanwhile are skipped. A holder that dies mid-sweep leaves a lease that ends
within `lease_seconds`, one that dies between rounds one that ends when its next round
was due; a replica that stops gives its lease up. Each UPDATE or INSERT is conditional,
so two replicas never both take it (SQLite and PostgreSQL alike). The times are the
replicas' own clocks: replicas whose clocks differ by more than a lease may both sweep,
which is harmless, as every sweep must be safe to run twice.
"""

import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from prometheus_client import Counter
from sqlalchemy import Column, MetaData, String, Table, delete, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_core.db import UtcDateTime, utcnow
from farm_core.retention import Clock

log = logging.getLogger(__name__)

Result = TypeVar("Result")

SWEEP_LEASES = "sweep_leases"
"""The scheduler's table of the leases (one row per sweep). Another service names its
own (auth: `auth_sweep_leases`): the services may share one database."""

ROUND_OUTCOMES = ("swept", "skipped")
"""The `outcome` label's values: a service serves them from 0 for its sweep's name."""
sweep_rounds = Counter(
    "farm_sweep_rounds_total",
    "Rounds of a farm-wide sweep (`sweep`: scheduler-retention, auth-audit-purge), by "
    "`outcome`: swept (this replica took the turn) or skipped (another replica holds it).",
    ["sweep", "outcome"],
)


def sweep_leases_table(metadata: MetaData, name: str = SWEEP_LEASES) -> Table:
    """The leases' table `name` in `metadata`: a sweep's name, its holder, when its lease ends."""
    return Table(
        name,
        metadata,
        Column("name", String(64), primary_key=True),
        Column("holder", String(200), nullable=False),
        Column("expire_time", UtcDateTime(), nullable=False),
    )


def new_holder() -> str:
    """A name for this replica's side of a lease: host and process (for operators), and unique."""
    return f"{socket.gethostname()[:120]}/{os.getpid()}/{uuid.uuid4().hex[:12]}"


class SweepTurns:
    """One replica's turns at the sweep `name`: `run` a round only if this replica may."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        name: str,
        *,
        lease_seconds: float,
        hold_seconds: float,
        clock: Clock = utcnow,
    ) -> None:
        self._engine = engine
        self._table = table
        self._name = name
        self._lease = timedelta(seconds=lease_seconds)
        self._hold = timedelta(seconds=hold_seconds)
        self._clock = clock
        self.holder = new_holder()

    async def run(self, work: Callable[[], Awaitable[Result]]) -> Result | None:
        """Runs `work` if this replica takes the turn, then holds it until its next round.

        None when another replica holds the turn. Should `work` fail, the lease is
        left to end `lease_seconds` after it was last taken or renewed: this replica's
        retry takes it again, or another replica's round once it has ended.
        """
        if not await self._take():
            sweep_rounds.labels(self._name, "skipped").inc()
            log.debug("%s: another replica has the turn; this round is skipped", self._name)
            return None
        sweep_rounds.labels(self._name, "swept").inc()
        result = await work()
        await self._extend(self._hold)
        return result

    async def renew(self) -> bool:
        """Extends this replica's lease by `lease_seconds`; False if another replica took it.

        A sweep calls it between its steps, each shorter than the lease.
        """
        renewed = await self._extend(self._lease)
        if not renewed:
            log.warning("%s: another replica took the sweep over; this one ends", self._name)
        return renewed

    async def release(self) -> None:
        """Gives the lease up, if this replica holds it (as it stops)."""
        table = self._table
        async with self._engine.begin() as connection:
            await connection.execute(
                delete(table).where(table.c.name == self._name, table.c.holder == self.holder)
            )

    async def _take(self) -> bool:
        """Takes the lease if it has ended (or is this replica's already), or was never taken."""
        table, now = self._table, self._clock()
        async with self._engine.begin() as connection:
            taken = await connection.execute(
                update(table)
                .where(
                    table.c.name == self._name,
                    or_(table.c.holder == self.holder, table.c.expire_time <= now),
                )
                .values(holder=self.holder, expire_time=now + self._lease)
            )
        if taken.rowcount:
            return True
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(table).values(
                        name=self._name, holder=self.holder, expire_time=now + self._lease
                    )
                )
        except IntegrityError:
            # The row is there: another replica holds the lease.
            return False
        return True

    async def _extend(self, seconds: timedelta) -> bool:
        """Moves the end of this replica's lease to `seconds` from now; False if not its own."""
        table = self._table
        async with self._engine.begin() as connection:
            extended = await connection.execute(
                update(table)
                .where(table.c.name == self._name, table.c.holder == self.holder)
                .values(expire_time=self._clock() + seconds)
            )
        return bool(extended.rowcount)
