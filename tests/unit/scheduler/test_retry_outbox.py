"""The retry outbox on a real SQLite file: rounds go least lately tried first, a batch at most,
stop at the first failure, and drop only the version of a row they tried."""

import datetime as dt
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, RowMapping, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_core.db import UtcDateTime, async_database_url, create_engine, utcnow
from farm_scheduler.retry_outbox import Kept, RetryOutbox

metadata = MetaData()
orders = Table(
    "orders",
    metadata,
    Column("key", String(8), primary_key=True),
    Column("order", String(16), nullable=False),
    Column("try_time", UtcDateTime(), nullable=False),
)
"""One order a key, a later one replacing it, as `pending_end_marks`."""


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A SQLite file holding an empty `orders` table."""
    engine = create_engine(async_database_url("", tmp_path / "outbox.db"))
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


def outbox(engine: AsyncEngine, batch: int = 100) -> RetryOutbox:
    """The outbox of `orders`, a row's version told by its try_time."""
    return RetryOutbox(engine, orders, identity=("key", "try_time"), batch=batch)


async def kept_earlier(engine: AsyncEngine, keys: Iterable[str]) -> None:
    """Keeps a "mark" order for each of `keys`, tried minutes ago, the first least lately."""
    keys = list(keys)
    async with engine.begin() as connection:
        for index, key in enumerate(keys):
            minutes_ago = len(keys) - index
            when = utcnow() - dt.timedelta(minutes=minutes_ago)
            await connection.execute(insert(orders).values(key=key, order="mark", try_time=when))


async def kept(engine: AsyncEngine) -> list[tuple[str, str]]:
    """The kept (key, order)s, least lately tried first."""
    query = select(orders.c.key, orders.c.order).order_by(orders.c.try_time)
    async with engine.connect() as connection:
        return [(row.key, row.order) for row in await connection.execute(query)]


async def try_time(engine: AsyncEngine, key: str) -> dt.datetime:
    """When the order kept for `key` was kept or last tried."""
    async with engine.connect() as connection:
        when = await connection.scalar(select(orders.c.try_time).where(orders.c.key == key))
    assert isinstance(when, dt.datetime)
    return when


class Nats:
    """Stands in for NATS in a round: notes the keys tried, refuses those in `refusing`."""

    def __init__(self, refusing: Iterable[str] = ()) -> None:
        self.tried: list[str] = []
        self._refusing = set(refusing)

    async def __call__(self, row: RowMapping) -> bool:
        self.tried.append(row["key"])
        return row["key"] not in self._refusing


async def test_a_round_stops_at_the_first_failure_which_goes_to_the_back(
    engine: AsyncEngine,
) -> None:
    await kept_earlier(engine, "abc")

    nats = Nats(refusing="b")
    assert await outbox(engine).retry(nats) == 1
    assert nats.tried == ["a", "b"]
    assert await kept(engine) == [("c", "mark"), ("b", "mark")]

    nats = Nats()
    assert await outbox(engine).retry(nats) == 2
    assert nats.tried == ["c", "b"]
    assert await kept(engine) == []


async def test_a_round_tries_a_batch_at_most(engine: AsyncEngine) -> None:
    await kept_earlier(engine, "abc")

    nats = Nats()
    assert await outbox(engine, batch=2).retry(nats) == 2
    assert nats.tried == ["a", "b"]
    assert await kept(engine) == [("c", "mark")]


@pytest.mark.parametrize("went", [True, False])
async def test_a_row_replaced_during_its_retry_stands_as_it_was_kept(
    engine: AsyncEngine, went: bool
) -> None:
    await kept_earlier(engine, "ab")
    box = outbox(engine)
    newer_try_times: list[dt.datetime] = []

    async def replaced_meanwhile(row: RowMapping) -> bool:
        if row["key"] == "a":
            assert await box.keep({"key": "a", "order": "withdraw"}, orders.c.key == "a") is (
                Kept.KEPT
            )
            newer_try_times.append(await try_time(engine, "a"))
        return went

    await box.retry(replaced_meanwhile)
    # Neither dropped by the older version's success nor sent back by its failure.
    assert await kept(engine) == ([] if went else [("b", "mark")]) + [("a", "withdraw")]
    assert newer_try_times == [await try_time(engine, "a")]


async def test_a_row_kept_again_without_replacing_clashes_and_the_first_stands(
    engine: AsyncEngine,
) -> None:
    box = outbox(engine)
    assert await box.keep({"key": "a", "order": "mark"}) is Kept.KEPT
    assert await box.keep({"key": "a", "order": "withdraw"}) is Kept.CLASHED
    assert await kept(engine) == [("a", "mark")]

    assert await box.keep({"key": "a", "order": "withdraw"}, orders.c.key == "a") is Kept.KEPT
    assert await kept(engine) == [("a", "withdraw")]


async def test_drop_takes_only_the_rows_it_matches(engine: AsyncEngine) -> None:
    await kept_earlier(engine, "ab")
    box = outbox(engine)

    await box.drop(orders.c.key == "a")
    await box.drop(orders.c.key == "z")
    assert await kept(engine) == [("b", "mark")]
