"""Deletes ended tasks and closed sessions past FARM_SCHEDULER_TASK_RETENTION_DAYS, hourly.

Each batch (one short transaction, so a backlog never holds a long one nor locks
SQLite for long): the tasks that may go (retention_rows), then storage deletes the
artifacts they own and confirms (farm_core.artifact_expiry), then their rows and
attempts go. Should storage answer that it could not delete some owners' artifacts,
those rows stay and the pass leaves them out and goes on; should it not answer, the
rows stay and the tasks' sweep ends (the sessions' still runs). A pass that kept
anything fails, and is tried again within minutes (RETRY_SECONDS, backing off to the
hour), which collects whatever the failed one left in S3. The replicas take turns
(farm_core.sweep_turns): a round runs on one replica only, which renews its lease
before each batch and stops should another have taken it over. Every step is
idempotent all the same (`purge` on two replicas at once is safe), and a row is
counted by the replica whose DELETE removed it.
"""

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import nats.errors
from nats.aio.client import Client
from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from farm_core.artifact_expiry import (
    ARTIFACTS_EXPIRE_SUBJECT,
    ArtifactOwner,
    encode_expiry,
    refused_owners,
)
from farm_core.db import utcnow
from farm_core.metric_series import start_at_zero
from farm_core.periodic import Periodic
from farm_core.retention import RETENTION_CHECK_SECONDS, Clock, retention_cutoff, retention_loop
from farm_core.sweep_turns import ROUND_OUTCOMES, SweepTurns, sweep_rounds
from farm_core.task_limits import MAX_CACHE_TTL_SECONDS
from farm_scheduler.models import sweep_leases
from farm_scheduler.retention_rows import (
    Expired,
    delete_sessions,
    delete_tasks,
    expired_sessions,
    expired_tasks,
)

log = logging.getLogger(__name__)

RETENTION_SWEEP = "scheduler-retention"
"""The retention sweep's name: its lease's row, its logs, `farm_sweep_rounds_total`'s `sweep`."""
start_at_zero(sweep_rounds, sweep=(RETENTION_SWEEP,), outcome=ROUND_OUTCOMES)

CLOCK_MARGIN = dt.timedelta(hours=1)
"""How far the replicas' clocks may differ for the sweep and the cache to stay apart."""


def cache_reach(retention_days: int) -> dt.timedelta | None:
    """The oldest result the cache may answer with under `retention_days` (0: no bound).

    A retention shorter than the longest cacheTtlSeconds bounds the cache to the retention
    less the clocks' margin, so that the sweep never deletes a result a new task may be
    answered from, and keeps none past the retention for the cache's sake.
    """
    if not retention_days:
        return None
    retained = dt.timedelta(days=retention_days)
    return min(dt.timedelta(seconds=MAX_CACHE_TTL_SECONDS), retained - CLOCK_MARGIN)


RETRY_SECONDS = 300.0
"""How soon a pass that kept something is tried again (doubled after each further failure,
up to the hourly interval): meanwhile its kept tasks may list artifacts storage deleted."""
MAX_REFUSED_PER_PASS = 1000
"""How many owners storage refused a pass leaves out before it ends that sweep (each is one
bound parameter of the following queries)."""

LEASE_SECONDS = 600.0
"""How long a replica's turn at the sweep lasts unrenewed (it renews before each batch):
another replica takes over this long after a sweeping replica died. At least three
batches' storage timeouts, should those be set longer."""

REQUEUE_MARGIN = dt.timedelta(hours=1)
"""How long before its retention ends a dead letter may no longer be requeued: a sweep
may have chosen it and be deleting its artifacts (an hour for the replicas' clocks)."""


def requeueable_since(retention_days: int, now: dt.datetime) -> dt.datetime | None:
    """The earliest end time of a dead letter that may still be requeued; None: any may.

    An older one is (nearly) past retention: a sweep may be deleting its artifacts,
    with those a requeued run would upload meanwhile, and then keep the requeued task.
    """
    if not retention_days:
        return None
    return retention_cutoff(retention_days, lambda: now) + REQUEUE_MARGIN


tasks_deleted = Counter(
    "farm_tasks_deleted_total",
    "Ended tasks deleted (with their attempts) past FARM_SCHEDULER_TASK_RETENTION_DAYS.",
)
sessions_deleted = Counter(
    "farm_sessions_deleted_total",
    "Closed sessions deleted past FARM_SCHEDULER_TASK_RETENTION_DAYS.",
)

batches_kept = Counter(
    "farm_retention_batches_kept_total",
    "Retention batches kept (wholly or in part) because storage did not confirm deleting "
    "their artifacts (no storage replica answered in time, or it answered a failure).",
)


class StorageUnconfirmed(Exception):
    """Storage did not confirm deleting a batch's artifacts: the batch is kept for next time."""


class StorageRefused(StorageUnconfirmed):
    """Storage answered that it could not delete some owners' artifacts; the pass went on."""

    def __init__(self, message: str, swept: "Swept") -> None:
        super().__init__(message)
        self.swept = swept


@dataclass(frozen=True)
class Swept:
    """What one pass deleted, and how many tasks or sessions it kept for storage's sake."""

    tasks: int = 0
    sessions: int = 0
    kept: int = 0


class TaskRetention:
    """The retention sweep of one scheduler replica: `start` its hourly loop, or `purge` once."""

    def __init__(
        self,
        engine: AsyncEngine,
        nc: Client,
        retention_days: int,
        batch_size: int,
        storage_timeout_seconds: float,
        clock: Clock = utcnow,
    ) -> None:
        self._engine = engine
        self._nc = nc
        self._batch_size = batch_size
        self._storage_timeout = storage_timeout_seconds
        self._turns = SweepTurns(
            engine,
            sweep_leases,
            RETENTION_SWEEP,
            lease_seconds=max(LEASE_SECONDS, 3 * storage_timeout_seconds),
            hold_seconds=RETENTION_CHECK_SECONDS,
            clock=clock,
        )
        self._loop: Periodic | None = retention_loop(
            RETENTION_SWEEP,
            self.take_turn,
            retention_days,
            survives=(SQLAlchemyError, OSError, StorageUnconfirmed),
            clock=clock,
            retry_seconds=RETRY_SECONDS,
        )

    def start(self) -> None:
        """Starts the hourly loop (none when retention is 0: everything is kept)."""
        if self._loop is not None:
            self._loop.start()

    @property
    def holder(self) -> str:
        """The name this replica writes in the `sweep_leases` row while it has the turn."""
        return self._turns.holder

    async def stop(self) -> None:
        """Stops the loop after the batch in progress, if any, and gives its turn up."""
        if self._loop is None:
            return
        await self._loop.stop()
        try:
            await self._turns.release()
        except (SQLAlchemyError, OSError) as error:
            log.warning("giving the retention sweep's turn up failed (it ends anyway): %s", error)

    async def take_turn(self, cutoff: dt.datetime) -> Swept | None:
        """One round of the loop: a `purge` if this replica takes the farm's turn, else None.

        The purge renews the turn before each batch and ends should another replica
        have taken it over; once done, this replica keeps the turn until its next round.
        """
        return await self._turns.run(lambda: self._purge(cutoff, self._turns.renew))

    async def purge(self, cutoff: dt.datetime) -> Swept:
        """Deletes, batch after batch, what ended before `cutoff` and may go; what went.

        Whether or not another replica sweeps meanwhile (the loop takes turns instead).
        Raises StorageUnconfirmed once both sweeps ran if storage did not answer, or
        StorageRefused (with what went) if it refused some owners.
        """
        return await self._purge(cutoff, None)

    async def _purge(
        self, cutoff: dt.datetime, still_ours: Callable[[], Awaitable[bool]] | None
    ) -> Swept:
        """`purge`; with `still_ours`, each batch only once it answered True."""
        tasks = _Sweep(still_ours)
        await self._batches(
            tasks,
            lambda c, skip: expired_tasks(c, cutoff, self._batch_size, skip),
            lambda c, ids: delete_tasks(c, ids, cutoff),
        )
        tasks_deleted.inc(tasks.deleted)
        sessions = _Sweep(still_ours)
        if not tasks.overtaken:
            # Overtaken, the pass is the other replica's now, sessions included.
            await self._batches(
                sessions,
                lambda c, skip: expired_sessions(c, cutoff, self._batch_size, skip),
                lambda c, ids: delete_sessions(c, ids, cutoff),
            )
        sessions_deleted.inc(sessions.deleted)
        if tasks.deleted or sessions.deleted:
            log.info(
                "deleted %d task(s) and %d session(s) that ended before %s",
                tasks.deleted,
                sessions.deleted,
                cutoff.isoformat(),
            )
        swept = Swept(tasks.deleted, sessions.deleted, len(tasks.refused) + len(sessions.refused))
        for failure in (tasks.unconfirmed, sessions.unconfirmed):
            if failure is not None:
                raise failure
        if swept.kept:
            raise StorageRefused(
                f"storage could not delete the artifacts of {swept.kept} task(s) or session(s); "
                "they are kept until the next pass",
                swept,
            )
        return swept

    async def _batches(
        self,
        sweep: "_Sweep",
        find: Callable[[AsyncConnection, Sequence[str]], Awaitable[list[Expired]]],
        remove: Callable[[AsyncConnection, Sequence[str]], Awaitable[int]],
    ) -> None:
        while self._loop is None or not self._loop.stopping:
            if sweep.still_ours is not None and not await sweep.still_ours():
                sweep.overtaken = True
                break
            async with self._engine.connect() as connection:
                batch = await find(connection, sorted(sweep.refused))
            if not batch:
                break
            owners = [ArtifactOwner(e.tenant, e.id) for e in batch if e.owns_artifacts]
            try:
                refused = {owner.owner_id for owner in await self._expire_artifacts(owners)}
            except StorageUnconfirmed as error:
                sweep.unconfirmed = error
                break
            sweep.refused |= refused
            going = [e.id for e in batch if e.id not in refused]
            removed = 0
            if going:
                async with self._engine.begin() as connection:
                    removed = await remove(connection, going)
            sweep.deleted += removed
            if len(sweep.refused) >= MAX_REFUSED_PER_PASS:
                break
            # Not `len(batch) < batch size`: deleting a cached task may free its source,
            # which the next query finds. A batch another replica took counts 0: stop.
            if not removed and not refused:
                break

    async def _expire_artifacts(self, owners: Sequence[ArtifactOwner]) -> list[ArtifactOwner]:
        """Has storage delete the owners' artifacts; those it answered it could not."""
        if not owners:
            return []
        try:
            reply = await self._nc.request(
                ARTIFACTS_EXPIRE_SUBJECT, encode_expiry(owners), timeout=self._storage_timeout
            )
            refused = refused_owners(reply.data, owners)
        except (nats.errors.Error, TimeoutError, ValueError) as error:
            batches_kept.inc()
            raise StorageUnconfirmed(
                f"storage did not confirm deleting the artifacts of {len(owners)} task(s) or "
                f"session(s) ({type(error).__name__}: {error}); they are kept until the next pass"
            ) from error
        if refused:
            batches_kept.inc()
            log.warning(
                "storage could not delete the artifacts of %d of %d owner(s): kept, and left "
                "out of the rest of this pass",
                len(refused),
                len(owners),
            )
        return refused


@dataclass
class _Sweep:
    """One kind's progress in a pass: rows deleted, owners storage refused, a lost answer."""

    still_ours: Callable[[], Awaitable[bool]] | None = None
    """Renews the replica's turn before a batch; False: another replica took the sweep over."""
    deleted: int = 0
    refused: set[str] = field(default_factory=set)
    unconfirmed: StorageUnconfirmed | None = None
    overtaken: bool = False
    """Another replica took the sweep over before a batch."""
