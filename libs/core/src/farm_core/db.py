"""SQL shared by the services that own tables: engines, UTC timestamps, Alembic migrations.

SQLite (a WAL-mode file under FARM_HOME) by default; PostgreSQL when DATABASE_URL
is set. Each service keeps its own tables and its own Alembic version table, so
all of them can share one PostgreSQL database.

Alembic is imported only to migrate: a start whose tables are already at the
newest revision reads the version table itself (0.1 to 0.3 s of CPU less per start,
docs/performance.md "Starting the farm").
"""

import asyncio
import datetime as dt
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import AfterValidator
from sqlalchemy import (
    ColumnElement,
    DateTime,
    MetaData,
    Select,
    and_,
    column,
    event,
    inspect,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from farm_core.paging import Cursor
from farm_core.runtime import StartFailure
from farm_core.settings import DEFAULT_MIGRATION_LOCK_TIMEOUT_SECONDS
from farm_core.sqlite_driver import OneTripDBAPI
from farm_core.tracing import trace_engine

if TYPE_CHECKING:
    from alembic.config import Config

Query = TypeVar("Query", bound=Select[Any])


def async_database_url(url: str | None, default_sqlite_path: Path) -> str:
    """The SQLAlchemy async URL for `url`, or for a SQLite file when `url` is empty."""
    if not url:
        default_sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{default_sqlite_path}"
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


_ASYNC_DRIVERS = ("postgresql+asyncpg", "sqlite+aiosqlite")


def checked_database_url(url: str) -> str:
    """`url` unchanged if it names a database the farm can use (or is empty); else ValueError.

    Checked at start: SQLAlchemy would refuse it only when the service first opens
    its engine, with a traceback that names no setting.
    """
    if not url:
        return url
    usage = "use postgresql://user:password@host:5432/database (or sqlite:///path)"
    try:
        parsed = make_url(async_database_url(url, Path()))
        port = parsed.port
    except (ArgumentError, ValueError):
        raise ValueError(f"not a database URL; {usage}") from None
    if parsed.drivername not in _ASYNC_DRIVERS:
        raise ValueError(f"the farm runs on PostgreSQL (asyncpg) or SQLite only; {usage}")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range; {usage}")
    return url


DatabaseUrl = Annotated[str, AfterValidator(checked_database_url)]
"""A DATABASE_URL setting: empty (SQLite under FARM_HOME) or a URL checked at start."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers work while one writer commits; busy_timeout makes a second
    # writer wait instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url`, with SQLite tuned for several concurrent tasks."""
    if url.startswith("sqlite"):
        # SQLite has one writer per file. With several connections a second writer
        # waits in SQLite's busy handler, which sleeps in steps of up to 100 ms; one
        # connection instead queues the process's statements, in order, without sleeping.
        # Through aiosqlite, a statement is one trip to its thread, not three or four.
        module = OneTripDBAPI() if url.startswith("sqlite+aiosqlite") else None
        engine = create_async_engine(url, pool_size=1, max_overflow=0, module=module)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite forgets)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if not isinstance(value, dt.datetime):
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


MIGRATION_LOCK_POLL_SECONDS = 0.2


async def migrate(
    engine: AsyncEngine,
    script_location: str,
    version_table: str,
    lock_timeout_seconds: float = DEFAULT_MIGRATION_LOCK_TIMEOUT_SECONDS,
    revision: str = "head",
) -> None:
    """Upgrades the database to `revision` of `script_location` ("pkg:dir") with Alembic.

    Each migration runs in its own transaction (an index built CONCURRENTLY on
    PostgreSQL runs between two, see farm_core.migration_ops). On PostgreSQL a
    statement that waits longer than `lock_timeout_seconds` for a table lock fails
    the upgrade (0: waits for ever), so that writers do not queue behind it.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["version_table"] = version_table
    async with engine.connect() as connection:
        if connection.dialect.name != "postgresql":
            await connection.run_sync(_upgrade, config, revision)
            return
        key = _migration_lock_key(version_table)
        await _take_migration_lock(connection, key)
        await connection.execute(text(f"SET lock_timeout = {round(lock_timeout_seconds * 1000)}"))
        await connection.commit()
        try:
            await connection.run_sync(_upgrade, config, revision)
        finally:
            # The pool keeps the connection: it must not keep the lock or the setting.
            await connection.rollback()
            await connection.execute(text("RESET lock_timeout"))
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            await connection.commit()


async def _take_migration_lock(connection: AsyncConnection, key: int) -> None:
    # Replicas of one service starting together on an empty database would each
    # create the version table; one would fail. A session lock, not a transaction's:
    # migrations commit on their way. Tried, not waited for: a replica waiting inside
    # a statement holds a snapshot, which the first one's CREATE INDEX CONCURRENTLY
    # would wait for in turn (a deadlock).
    while True:
        taken = await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        await connection.commit()
        if taken:
            return
        await asyncio.sleep(MIGRATION_LOCK_POLL_SECONDS)


def _migration_lock_key(version_table: str) -> int:
    digest = hashlib.sha256(f"farm-migrate:{version_table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _upgrade(connection: Connection, config: "Config", revision: str) -> None:
    from alembic import command

    config.attributes["connection"] = connection
    _refuse_newer_schema(connection, config)
    command.upgrade(config, revision)


class NewerSchema(StartFailure):
    """The database was migrated by a newer version of the service than this one."""


def _refuse_newer_schema(connection: Connection, config: "Config") -> None:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    # After a rollback to an older release Alembic would fail with a traceback
    # ("Can't locate revision identified by '0020'") that names neither the service
    # nor the way out; migrations only go forward, so say both.
    version_table = config.attributes["version_table"]
    current = MigrationContext.configure(
        connection, opts={"version_table": version_table}
    ).get_current_heads()
    # Reading the version table began a transaction: Alembic must find none, or it
    # would run every migration inside it rather than one transaction each.
    connection.rollback()
    script = ScriptDirectory.from_config(config)
    known = {each.revision for each in script.walk_revisions()}
    unknown = sorted(set(current) - known)
    if unknown:
        service = version_table.removeprefix("alembic_version_")
        raise NewerSchema(
            f"the database's {service} tables are at migration {', '.join(unknown)}, which "
            f"this version does not know (its newest is {script.get_current_head()}): a newer "
            f"version of the farm migrated them, and migrations only go forward. Run that "
            f"version again, or restore the backup made before the upgrade (docs/deploy.md, "
            f"Upgrading)"
        )


def run_migrations(target_metadata: MetaData) -> None:
    """The body of each service's Alembic env.py: migrate on the connection `migrate` gave."""
    from alembic import context

    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=context.config.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def at_revision(engine: AsyncEngine, version_table: str, revision: str) -> bool:
    """Whether the tables of `version_table` are at `revision` alone, read without Alembic.

    False for a database never migrated, one at another revision (older, newer or
    several heads) or one being migrated: each of those is for `migrate` to judge.
    """
    async with engine.connect() as connection:
        return await connection.run_sync(_at_revision, version_table, revision)


def _at_revision(connection: Connection, version_table: str, revision: str) -> bool:
    if not inspect(connection).has_table(version_table):
        return False
    versions = table(version_table, column("version_num"))
    return list(connection.scalars(select(versions.c.version_num))) == [revision]


class Database:
    """One service's SQL database: its engine, brought to the newest migration on start."""

    def __init__(
        self,
        url: str,
        migrations: str,
        version_table: str,
        newest_revision: str,
        migration_lock_timeout_seconds: float = DEFAULT_MIGRATION_LOCK_TIMEOUT_SECONDS,
    ) -> None:
        self.engine: AsyncEngine = create_engine(url)
        self._migrations = migrations
        self._version_table = version_table
        self._newest_revision = newest_revision
        self._migration_lock_timeout = migration_lock_timeout_seconds

    async def start(self) -> None:
        """Brings the tables up to the newest migration; then its statements are traced."""
        # Most starts find the tables at the newest revision: Alembic would load its
        # script machinery and every dialect it knows only to find nothing to do.
        if not await at_revision(self.engine, self._version_table, self._newest_revision):
            await migrate(
                self.engine, self._migrations, self._version_table, self._migration_lock_timeout
            )
        trace_engine(self.engine)

    async def close(self) -> None:
        """Closes the database connections."""
        await self.engine.dispose()


def newest_first(
    query: Query,
    create_time: ColumnElement[dt.datetime],
    object_id: ColumnElement[str],
    after: Cursor | None,
    size: int,
) -> Query:
    """`query` limited to `size` rows, newest first, starting after the `after` row."""
    if after is not None:
        query = query.where(
            or_(
                create_time < after.create_time,
                and_(create_time == after.create_time, object_id < after.object_id),
            )
        )
    return query.order_by(create_time.desc(), object_id.desc()).limit(size)
