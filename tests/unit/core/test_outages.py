"""A busy or unreachable database or NATS is UNAVAILABLE, saying which; a bug stays INTERNAL."""

import sqlite3
from pathlib import Path
from typing import Any

import grpc
import nats.errors
import pytest
from sqlalchemy import create_engine, exc, text

from farm_core.call_chain import ServerCall
from farm_core.interceptors import ErrorMappingInterceptor
from farm_core.outages import outage

METHOD = "/farm.sessions.v1.SessionService/RunSessionCommand"


class AbortingContext:
    """The part of a gRPC servicer context the error mapping uses: abort, noted."""

    def __init__(self) -> None:
        self.status: tuple[grpc.StatusCode, str] | None = None

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.status = (code, details)
        raise grpc.aio.AbortError()


async def status_of(error: Exception) -> tuple[grpc.StatusCode, str] | None:
    context = AbortingContext()
    around = ErrorMappingInterceptor().around(METHOD)
    with pytest.raises(grpc.aio.AbortError):
        async with around(ServerCall(context=context)):
            raise error
    return context.status


def raised(call: Any) -> Exception:
    try:
        call()
    except Exception as error:
        return error
    raise AssertionError("nothing was raised")


def locked_write(tmp_path: Path) -> Exception:
    """SQLAlchemy's error for a write while another connection holds the file's write lock."""
    database = tmp_path / "farm.db"
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("CREATE TABLE counts (n INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 0})

    def write() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO counts VALUES (1)"))

    try:
        return raised(write)
    finally:
        engine.dispose()
        holder.close()


def no_free_connection(tmp_path: Path) -> Exception:
    """SQLAlchemy's error when every pooled connection is in use past the pool's timeout."""
    engine = create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}", pool_size=1, max_overflow=0, pool_timeout=0.01
    )
    try:
        with engine.connect():
            return raised(engine.connect)
    finally:
        engine.dispose()


async def test_a_database_locked_by_another_writer_is_unavailable(tmp_path: Path) -> None:
    error = locked_write(tmp_path)
    assert isinstance(error, exc.OperationalError)
    assert await status_of(error) == (
        grpc.StatusCode.UNAVAILABLE,
        "the database is busy (database is locked); try again",
    )


def full_write(tmp_path: Path) -> Exception:
    """SQLAlchemy's error for a write that finds no room: SQLite's file can grow no more."""
    engine = create_engine(f"sqlite:///{tmp_path / 'full.db'}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE blobs (data BLOB)"))
        with engine.connect() as connection:
            # As a disk with no free space does: the next page the file needs is refused.
            count = connection.execute(text("PRAGMA page_count")).scalar_one()
            connection.execute(text(f"PRAGMA max_page_count = {count}"))
            return raised(
                lambda: connection.execute(text("INSERT INTO blobs VALUES (zeroblob(100000))"))
            )
    finally:
        engine.dispose()


async def test_a_full_database_is_unavailable_and_says_so(tmp_path: Path) -> None:
    error = full_write(tmp_path)
    assert isinstance(error, exc.OperationalError)
    assert await status_of(error) == (
        grpc.StatusCode.UNAVAILABLE,
        "the database is full (database or disk is full); try again",
    )


async def test_a_database_whose_connections_are_all_in_use_is_unavailable(
    tmp_path: Path,
) -> None:
    error = no_free_connection(tmp_path)
    assert isinstance(error, exc.TimeoutError)
    assert await status_of(error) == (
        grpc.StatusCode.UNAVAILABLE,
        "the database is busy: every connection to it is in use; try again",
    )


async def test_nats_out_of_reach_is_unavailable() -> None:
    assert await status_of(nats.errors.ConnectionClosedError()) == (
        grpc.StatusCode.UNAVAILABLE,
        "NATS is out of reach (nats: connection closed); try again",
    )
    assert await status_of(nats.errors.TimeoutError()) == (
        grpc.StatusCode.UNAVAILABLE,
        "NATS did not answer in time; try again",
    )


async def test_a_bug_stays_internal_and_a_wrong_statement_is_no_outage(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'bug.db'}")
    try:
        with engine.connect() as connection:
            wrong = raised(lambda: connection.execute(text("SELECT * FROM no_such_table")))
    finally:
        engine.dispose()
    assert outage(wrong) is None
    assert await status_of(KeyError("session")) == (
        grpc.StatusCode.INTERNAL,
        f"internal error in {METHOD}",
    )


def read_only_write(tmp_path: Path) -> Exception:
    """SQLAlchemy's error for a write to a database SQLite opened read-only (as on a ro mount)."""
    database = tmp_path / "ro.db"
    sqlite3.connect(database).execute("CREATE TABLE counts (n INTEGER)").connection.close()
    engine = create_engine(f"sqlite:///file:{database}?mode=ro&uri=true")
    try:
        with engine.begin() as connection:
            return raised(lambda: connection.execute(text("INSERT INTO counts VALUES (1)")))
    finally:
        engine.dispose()


def sqlite_said(words: str) -> exc.OperationalError:
    """SQLAlchemy's error for SQLite's `words` (a failing disk cannot be made on demand)."""
    return exc.OperationalError(
        "INSERT INTO counts VALUES (1)", {}, sqlite3.OperationalError(words)
    )


async def test_a_read_only_database_is_unavailable_and_says_so_not_busy(tmp_path: Path) -> None:
    error = read_only_write(tmp_path)
    assert isinstance(error, exc.OperationalError)
    assert await status_of(error) == (
        grpc.StatusCode.UNAVAILABLE,
        "the database is read-only (attempt to write a readonly database); try again",
    )


@pytest.mark.parametrize(
    ("words", "said"),
    [
        ("disk I/O error", "the database's disk failed to read or write (disk I/O error)"),
        ("database or disk is full", "the database is full (database or disk is full)"),
        (
            "attempt to write a readonly database",
            "the database is read-only (attempt to write a readonly database)",
        ),
        (
            "unable to open database file",
            "the database file cannot be opened (unable to open database file)",
        ),
        ("database is locked", "the database is busy (database is locked)"),
        ("database table is locked", "the database is busy (database table is locked)"),
    ],
)
def test_only_a_lock_is_called_busy_each_other_sqlite_outage_says_what_it_is(
    words: str, said: str
) -> None:
    assert outage(sqlite_said(words)) == said
