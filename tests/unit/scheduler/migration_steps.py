"""Moves a test's scheduler database to a revision of its migrations, up or down."""

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_scheduler.store import MIGRATIONS, VERSION_TABLE


def _migrate(connection: Connection, revision: str, down: bool) -> None:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["version_table"] = VERSION_TABLE
    config.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(config, revision)


async def migrate(engine: AsyncEngine, revision: str, *, down: bool = False) -> None:
    """Upgrades (or with `down`, downgrades) the database to `revision`, in one transaction."""
    async with engine.begin() as connection:
        await connection.run_sync(_migrate, revision, down)
