"""The SQLite engine's driver: one trip to aiosqlite's thread per statement, same results."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from farm_core.db import async_database_url, create_engine

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, unique=True, nullable=False),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """The farm's engine for a SQLite file, holding three things."""
    engine = create_engine(async_database_url("", tmp_path / "farm.db"))
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
        await connection.execute(insert(things), [{"name": n} for n in ("a", "b", "c")])
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the calls each connection sent to its aiosqlite thread, in order."""
    sent: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Callable[..., Any], *args: Any) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return sent


async def test_a_query_and_a_write_are_one_trip_each(engine: AsyncEngine, trips: list[str]) -> None:
    async with engine.connect() as connection:
        trips.clear()
        names = (await connection.execute(select(things.c.name).order_by(things.c.id))).all()
        assert len(trips) == 1
        changed = await connection.execute(update(things).values(name="z").where(things.c.id == 3))
        assert len(trips) == 2
    assert [row.name for row in names] == ["a", "b", "c"]
    assert changed.rowcount == 1


async def test_results_match_sqlalchemys_own_driver(engine: AsyncEngine, tmp_path: Path) -> None:
    stock = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}")
    try:
        async with stock.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(insert(things), [{"name": n} for n in ("a", "b", "c")])
        assert await _outcomes(engine) == await _outcomes(stock)
    finally:
        await stock.dispose()


async def _outcomes(engine: AsyncEngine) -> list[Any]:
    """What a few kinds of statement give back, as plain values."""
    seen: list[Any] = []
    async with engine.begin() as connection:
        inserted = await connection.execute(insert(things).values(name="d"))
        seen.append(inserted.inserted_primary_key)
        seen.append(inserted.lastrowid)
        many = await connection.execute(insert(things), [{"name": "e"}, {"name": "f"}])
        seen.append(many.rowcount)
        result = await connection.execute(select(things).where(things.c.id > 4))
        seen.append((list(result.keys()), result.all()))
        seen.append((await connection.execute(update(things).values(name=things.c.name))).rowcount)
        seen.append((await connection.execute(text("SELECT 1 WHERE 0"))).all())
        streamed = await connection.stream(select(things.c.name).order_by(things.c.id))
        seen.append([row.name async for row in streamed])
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(insert(things).values(name="a"))
    with pytest.raises(OperationalError):
        async with engine.connect() as connection:
            await connection.execute(text("SELECT nothing FROM nowhere"))
    async with engine.connect() as connection:
        seen.append((await connection.execute(select(things.c.name))).scalars().all())
    return seen
