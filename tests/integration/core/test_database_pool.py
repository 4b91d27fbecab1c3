"""The tests' PostgreSQL database pool, against the machine's server: fresh, empty, dropped."""

import secrets
from collections.abc import Iterator

import asyncpg
import pytest

from tests.postgres import POSTGRES_URL, postgres_reachable
from tests.postgres_pool import DatabasePool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not postgres_reachable(), reason=f"no PostgreSQL at {POSTGRES_URL}"),
]


@pytest.fixture
def pool() -> Iterator[DatabasePool]:
    """A pool of the test's own, its names under a prefix no other pool uses."""
    pool = DatabasePool(prefix=f"farm_test_pool{secrets.token_hex(3)}_")
    try:
        yield pool
    finally:
        pool.close()


async def existing(prefix: str) -> set[str]:
    """The names of the server's databases that start with `prefix`."""
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        rows = await admin.fetch(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix
        )
    finally:
        await admin.close()
    return {row["datname"] for row in rows}


def name_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def test_a_database_handed_out_exists_and_is_empty(pool: DatabasePool) -> None:
    url = await pool.take()

    assert name_of(url).startswith(pool.prefix)
    assert name_of(url) in await existing(pool.prefix)
    connection = await asyncpg.connect(url)
    try:
        tables = await connection.fetchval(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        )
    finally:
        await connection.close()
    assert tables == 0


async def test_two_databases_handed_out_differ(pool: DatabasePool) -> None:
    first, second = await pool.take(), await pool.take()

    assert first != second


async def test_a_released_database_is_dropped_even_while_connected(pool: DatabasePool) -> None:
    url = await pool.take()
    kept = await pool.take()
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("CREATE TABLE leftover (id int)")

        pool.release(url)
        await pool.drained()

        left = await existing(pool.prefix)
    finally:
        connection.terminate()
    assert name_of(url) not in left
    assert name_of(kept) in left


async def test_closing_drops_every_database_made_ready_out_or_released(
    pool: DatabasePool,
) -> None:
    released, out = await pool.take(), await pool.take()
    pool.release(released)
    assert await existing(pool.prefix)

    pool.close()

    assert await existing(pool.prefix) == set()
    assert name_of(out) not in await existing("farm_test_")
