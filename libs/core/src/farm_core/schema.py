"""A service's tables' migration, read or brought up to date without serving: `farm db`.

Each service that owns tables runs `schema_main` from its `schema` module
(`python -m farm_scheduler.schema show|migrate|where`), which prints one JSON object on
stdout, or one line on stderr and exits 1. Only the database settings are read,
so the command needs none of the keys or addresses the service needs to serve.
"""

import asyncio
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import AliasChoices, Field, ValidationError, create_model
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource
from pydantic_settings.sources.utils import parse_env_vars
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_core.db import DatabaseUrl, async_database_url, create_engine, migrate
from farm_core.runtime import StartFailure
from farm_core.settings import FarmSettings
from farm_core.settings_load import load_settings, settings_error_text

ACTIONS = ("show", "migrate", "where")


class SchemaState(StrEnum):
    """Where a database's tables of one service stand against this release's migrations."""

    EMPTY = "empty"  # never migrated: a new database, `migrate` creates the tables
    BEHIND = "behind"  # an older release migrated them: `migrate` (or a start) upgrades
    CURRENT = "current"
    NEWER = "newer"  # a newer release migrated them: this one refuses to start on them


@dataclass(frozen=True)
class SchemaVersion:
    """One service's tables in one database: their migration and this release's newest."""

    service: str
    database: str  # the URL without its password
    revision: str | None  # None: never migrated
    newest: str
    state: SchemaState


class DatabaseUnreachable(StartFailure):
    """The database could not be opened; the message names its URL, not its password."""


def schema_version(
    connection: Connection, script_location: str, version_table: str
) -> tuple[str | None, str, SchemaState]:
    """The revision the tables are at, this release's newest, and the state of the two."""
    current = MigrationContext.configure(
        connection, opts={"version_table": version_table}
    ).get_current_heads()
    script = _script(script_location)
    newest = script.get_current_head() or ""
    known = {each.revision for each in script.walk_revisions()}
    revision = ", ".join(current) if current else None
    if not current:
        return revision, newest, SchemaState.EMPTY
    if set(current) - known:
        return revision, newest, SchemaState.NEWER
    if set(current) == {newest}:
        return revision, newest, SchemaState.CURRENT
    return revision, newest, SchemaState.BEHIND


async def read_version(
    engine: AsyncEngine, service: str, script_location: str, version_table: str
) -> SchemaVersion:
    """The migration `service`'s tables are at in `engine`'s database."""
    database = engine.url.render_as_string(hide_password=True)
    try:
        async with engine.connect() as connection:
            revision, newest, state = await connection.run_sync(
                schema_version, script_location, version_table
            )
    except (OSError, DBAPIError) as error:
        raise DatabaseUnreachable(
            f"cannot reach the {service} database at {database}: {_reason(error)}"
        ) from None
    return SchemaVersion(service, database, revision, newest, state)


def _script(script_location: str) -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", script_location)
    return ScriptDirectory.from_config(config)


def _reason(error: Exception) -> str:
    cause = error.orig if isinstance(error, DBAPIError) else error
    return " ".join(str(cause).split()) or type(cause).__name__


class _DatabaseSettings(FarmSettings):
    """FARM_HOME and the migration lock's timeout; the URL is the service's own setting."""

    database_url: str = ""


def database_settings_class(service: str) -> type[_DatabaseSettings]:
    """`service`'s database settings: the same variables as the service's own.

    FARM_<SERVICE>_DATABASE_URL, else DATABASE_URL; FARM_HOME for its SQLite file.
    """
    return create_model(
        f"{service.title()}DatabaseSettings",
        __base__=_DatabaseSettings,
        database_url=(
            DatabaseUrl,
            Field(
                default="",
                validation_alias=AliasChoices(
                    f"FARM_{service.upper()}_DATABASE_URL", "DATABASE_URL"
                ),
            ),
        ),
    )


def database_settings(service: str) -> _DatabaseSettings:
    """`service`'s database settings, from the environment; exits 2 naming a bad one."""
    return load_settings(database_settings_class(service), service)


class _EnvironSource(EnvSettingsSource):
    """The variables of a given environment (another process's) instead of os.environ."""

    def __init__(self, settings_class: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_class)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # As the library reads os.environ (case, empty values, "None"), from the mapping.
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class BadDatabaseSettings(StartFailure):
    """The environment's database settings were refused; the lines name each variable."""


def database_settings_from(service: str, environ: Mapping[str, str]) -> _DatabaseSettings:
    """`service`'s database settings as a process with `environ` reads them.

    Read here, not by starting that process: `farm db` reads them for every service
    of a running farm and its own, and a Python start per service took seconds.
    BadDatabaseSettings holds the lines the service would print refusing them.
    """
    base = database_settings_class(service)

    class InEnviron(base):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (_EnvironSource(settings_cls, environ),)

    try:
        settings: _DatabaseSettings = InEnviron()
    except ValidationError as error:
        raise BadDatabaseSettings(settings_error_text(InEnviron, error, service)) from None
    problems = settings.file_problems()
    if problems:
        lines = [f"{service} cannot start: {len(problems)} bad setting(s)", *problems]
        raise BadDatabaseSettings("\n  ".join(lines))
    return settings


def database_settings_in(service: str, environ: Mapping[str, str]) -> _DatabaseSettings | None:
    """database_settings_from()'s settings, or None if it refused them."""
    try:
        return database_settings_from(service, environ)
    except BadDatabaseSettings:
        return None


def database_in_use(
    service: str, settings: _DatabaseSettings | None = None, cwd: Path | None = None
) -> dict[str, object]:
    """where: the database `service` would use, without its password or opening it.

    `settings` and `cwd` are another process's (default: this one's). A SQLite file's
    path is absolute, so that two processes started in different directories compare
    equal when they use one file (`farm db` against a running farm).
    """
    settings = database_settings(service) if settings is None else settings
    folder = Path.cwd() if cwd is None else cwd
    if not settings.database_url:
        sqlite_file = (folder / settings.database_path(service)).resolve()
        return {"service": service, "database": f"sqlite:///{sqlite_file}"}
    url = make_url(async_database_url(settings.database_url, Path()))
    if url.get_backend_name() == "sqlite" and url.database:
        url = url.set(database=str((folder / url.database).resolve()))
    return {"service": service, "database": url.render_as_string(hide_password=True)}


async def run_action(
    action: str,
    service: str,
    script_location: str,
    version_table: str,
    settings: _DatabaseSettings | None = None,
) -> dict[str, object]:
    """show: the tables' version; migrate: upgrades them, then the version before and after.

    With `settings` given (`farm db`, in its own process), this process's are not read.
    """
    if action == "where":
        return database_in_use(service, settings)
    settings = database_settings(service) if settings is None else settings
    sqlite_file = settings.database_path(service)
    if action == "show" and not settings.database_url and not sqlite_file.exists():
        # Not made by looking: `farm db status` in the wrong directory leaves no database.
        newest = _script(script_location).get_current_head() or ""
        database = f"sqlite+aiosqlite:///{sqlite_file}"
        return asdict(SchemaVersion(service, database, None, newest, SchemaState.EMPTY))
    url = async_database_url(settings.database_url, sqlite_file)
    lock_timeout = settings.migration_lock_timeout_seconds
    engine = create_engine(url)
    try:
        before = await read_version(engine, service, script_location, version_table)
        if action == "show":
            return asdict(before)
        if before.state != SchemaState.CURRENT:
            # Refuses a newer schema itself (NewerSchema), naming the way back.
            await migrate(engine, script_location, version_table, lock_timeout)
        after = await read_version(engine, service, script_location, version_table)
        return {**asdict(after), "before": before.revision}
    finally:
        await engine.dispose()


def schema_main(service: str, script_location: str, version_table: str) -> None:
    """The entry point of a service's `schema` module: `show` or `migrate`, JSON on stdout."""
    action = sys.argv[1] if len(sys.argv) == 2 else ""
    if action not in ACTIONS:
        print(f"usage: python -m farm_{service}.schema {{{'|'.join(ACTIONS)}}}", file=sys.stderr)
        raise SystemExit(2)
    try:
        outcome = asyncio.run(run_action(action, service, script_location, version_table))
    except StartFailure as failure:
        print(str(failure), file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    print(json.dumps(outcome), flush=True)
