"""Scheduler replicas take turns at the retention sweep: one sweeps a round, the others skip it.

Two real schedulers on one database (SQLite, then PostgreSQL) and a real storage
service; a replica that died is played by ending its lease in `sweep_leases`.
"""

import asyncio
import datetime as dt
from collections.abc import Sequence

import nats
import pytest
from sqlalchemy import select, update

from farm_core.artifact_expiry import ArtifactOwner
from farm_core.db import utcnow
from farm_scheduler.models import sweep_leases
from farm_scheduler.retention import TaskRetention
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.scheduler.conftest import (
    SUCCEEDED,
    Scheduler,
    StartScheduler,
    sample,
)
from tests.integration.scheduler.retention.conftest import (
    LONG_AGO,
    THIRTY_DAYS_AGO,
    artifact_gone,
    ended,
    retention_of,
    session_row,
    sessions_gone,
    stored,
    task_gone,
)
from tests.integration.storage.conftest import Storage

pytestmark = pytest.mark.integration

SWEEP = "scheduler-retention"


def rounds(outcome: str) -> float:
    """This process's rounds of the retention sweep that were `outcome` (swept, skipped)."""
    return sample("farm_sweep_rounds_total", sweep=SWEEP, outcome=outcome)


async def turn_holder(scheduler: Scheduler) -> str | None:
    """The replica that holds the turn at the retention sweep, as `sweep_leases` names it."""
    async with scheduler.service.store.engine.connect() as connection:
        row = await connection.execute(
            select(sweep_leases.c.holder).where(sweep_leases.c.name == SWEEP)
        )
        return row.scalar_one_or_none()


async def holds(scheduler: Scheduler, holder: str) -> bool:
    """Whether `holder` holds the turn at the retention sweep."""
    return await turn_holder(scheduler) == holder


async def old_tasks(scheduler: Scheduler, storage: Storage, count: int) -> list[str]:
    """`count` tasks past retention, each with an artifact; their ids."""
    ids = [await ended(scheduler, SUCCEEDED, LONG_AGO) for _ in range(count)]
    for task_id in ids:
        await stored(storage, task_id)
    return ids


async def test_one_replica_sweeps_a_round_and_another_takes_over_once_it_is_gone(
    scheduler: Scheduler, start_scheduler: StartScheduler, storage: Storage
) -> None:
    first = retention_of(scheduler)
    # Its round at start took the turn, and holds it until its next round, an hour on.
    await assert_eventually(
        lambda: holds(scheduler, first.holder), message="the first replica took no turn"
    )
    waiting = await old_tasks(scheduler, storage, 3)
    skipped, swept, deleted = rounds("skipped"), rounds("swept"), sample("farm_tasks_deleted_total")

    other = await start_scheduler()
    second = retention_of(other)

    # The second replica's round at start is skipped: the first has the turn.
    await assert_eventually(lambda: rounds("skipped") == skipped + 1, message="no round skipped")
    assert rounds("swept") == swept
    assert not any([await task_gone(scheduler, task_id) for task_id in waiting])
    # Rounds of both at once: only the holder sweeps.
    at_once = await asyncio.gather(
        first.take_turn(THIRTY_DAYS_AGO), second.take_turn(THIRTY_DAYS_AGO)
    )
    assert at_once[1] is None
    assert at_once[0] is not None and at_once[0].tasks == len(waiting)
    assert sample("farm_tasks_deleted_total") == deleted + len(waiting)
    assert all([await task_gone(scheduler, task_id) for task_id in waiting])

    # The first replica dies: its lease ends, and no round of its own renews it.
    waiting = await old_tasks(scheduler, storage, 2)
    async with scheduler.service.store.engine.begin() as connection:
        await connection.execute(
            update(sweep_leases)
            .where(sweep_leases.c.name == SWEEP)
            .values(expire_time=utcnow() - dt.timedelta(seconds=1))
        )

    taken_over = await second.take_turn(THIRTY_DAYS_AGO)

    assert taken_over is not None and taken_over.tasks == len(waiting)
    assert await turn_holder(scheduler) == second.holder
    assert all([await task_gone(scheduler, task_id) for task_id in waiting])
    assert await first.take_turn(THIRTY_DAYS_AGO) is None


async def test_a_replica_that_stops_gives_its_turn_to_the_next_round_of_another(
    scheduler: Scheduler, start_scheduler: StartScheduler, storage: Storage
) -> None:
    first = retention_of(scheduler)
    await assert_eventually(
        lambda: holds(scheduler, first.holder), message="the first replica took no turn"
    )
    second = retention_of(await start_scheduler())
    [task_id] = await old_tasks(scheduler, storage, 1)
    artifact = await stored(storage, task_id, "second")
    assert await second.take_turn(THIRTY_DAYS_AGO) is None

    await first.stop()

    assert await turn_holder(scheduler) is None
    swept = await second.take_turn(THIRTY_DAYS_AGO)
    assert swept is not None and swept.tasks == 1
    assert await task_gone(scheduler, task_id)
    assert await artifact_gone(storage, artifact)


async def test_a_sweep_whose_turn_another_replica_took_ends_after_its_batch(
    scheduler: Scheduler,
    storage: Storage,
    nats_server: NatsServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Its lease ended (say, a batch outlasted it), and another replica took the turn.
    await retention_of(scheduler).stop()
    waiting = await old_tasks(scheduler, storage, 3)
    session_id = await session_row(scheduler, THIRTY_DAYS_AGO, close_time=THIRTY_DAYS_AGO)
    engine = scheduler.service.store.engine

    class OvertakenRetention(TaskRetention):
        """A sweep whose turn another replica takes while storage deletes its first batch."""

        async def _expire_artifacts(self, owners: Sequence[ArtifactOwner]) -> list[ArtifactOwner]:
            async with engine.begin() as connection:
                await connection.execute(
                    update(sweep_leases)
                    .where(sweep_leases.c.name == SWEEP)
                    .values(holder="another replica", expire_time=utcnow() + dt.timedelta(hours=1))
                )
            return await super()._expire_artifacts(owners)

    nc = await nats.connect(nats_server.url)
    try:
        swept = await OvertakenRetention(engine, nc, 30, 1, 30.0).take_turn(THIRTY_DAYS_AGO)
    finally:
        await nc.close()

    # Its one batch went; it renews its turn before each, and found it taken before the next.
    assert swept is not None and swept.tasks == 1
    assert [await task_gone(scheduler, task_id) for task_id in waiting].count(True) == 1
    # The sessions' sweep is the other replica's too: not tried, nor the takeover told twice.
    assert swept.sessions == 0 and not await sessions_gone(scheduler, session_id)
    assert caplog.text.count("another replica took the sweep over") == 1, caplog.text
    assert await turn_holder(scheduler) == "another replica"
