"""Farm-wide sweeps taken in turns: the lease in SQL, on a real SQLite file, with a moved clock."""

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_core.db import async_database_url, create_engine
from farm_core.sweep_turns import SweepTurns, sweep_leases_table

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LEASE = 60.0
HOLD = 3600.0


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def move(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
async def leases(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, Table]]:
    """Two engines' worth of replicas share this SQLite file and its `sweep_leases`."""
    engine = create_engine(async_database_url("", tmp_path / "leases.db"))
    table = sweep_leases_table(MetaData())
    async with engine.begin() as connection:
        await connection.run_sync(table.metadata.create_all)
    yield engine, table
    await engine.dispose()


def replicas(leases: tuple[AsyncEngine, Table], clock: Clock, count: int = 2) -> list[SweepTurns]:
    engine, table = leases
    return [
        SweepTurns(engine, table, "sweep", lease_seconds=LEASE, hold_seconds=HOLD, clock=clock)
        for _ in range(count)
    ]


async def holder(leases: tuple[AsyncEngine, Table]) -> str | None:
    engine, table = leases
    async with engine.connect() as connection:
        return (await connection.execute(select(table.c.holder))).scalar_one_or_none()


async def swept() -> str:
    return "swept"


async def test_rounds_at_once_sweep_on_one_replica_only(
    leases: tuple[AsyncEngine, Table],
) -> None:
    turns = replicas(leases, Clock(), count=4)

    rounds = await asyncio.gather(*(each.run(swept) for each in turns))

    assert rounds.count("swept") == 1
    assert rounds.count(None) == 3
    [taker] = [each for each, outcome in zip(turns, rounds, strict=True) if outcome]
    assert await holder(leases) == taker.holder


async def test_the_holder_keeps_its_turn_until_its_next_round_is_due(
    leases: tuple[AsyncEngine, Table],
) -> None:
    clock = Clock()
    first, second = replicas(leases, clock)
    assert await first.run(swept) == "swept"

    clock.move(HOLD - 1)
    assert await second.run(swept) is None
    assert await first.run(swept) == "swept"
    clock.move(HOLD + 1)
    assert await second.run(swept) == "swept"
    assert await holder(leases) == second.holder


async def test_a_holder_that_died_mid_sweep_is_taken_over_once_its_lease_ended(
    leases: tuple[AsyncEngine, Table],
) -> None:
    clock = Clock()
    dying, other = replicas(leases, clock)

    async def dies() -> str:
        clock.move(LEASE / 2)
        assert await dying.renew()
        raise RuntimeError("the replica died")

    with pytest.raises(RuntimeError):
        await dying.run(dies)
    clock.move(LEASE - 1)
    assert await other.run(swept) is None
    clock.move(2)
    assert await other.run(swept) == "swept"
    # The replica that lost its lease learns so at its next renewal and ends its sweep.
    assert not await dying.renew()


async def test_a_replica_that_stops_gives_its_turn_up(
    leases: tuple[AsyncEngine, Table],
) -> None:
    clock = Clock()
    stopping, other = replicas(leases, clock)
    assert await stopping.run(swept) == "swept"
    await other.release()
    assert await holder(leases) == stopping.holder

    await stopping.release()

    assert await other.run(swept) == "swept"
