"""Fresh PostgreSQL databases on the machine's server (or DATABASE_URL's), for tests.

End-to-end farms use one of their own when FARM_TEST_DATABASE=postgres (`make test`
runs the end-to-end suite that way too), instead of each service's SQLite file.
"""

import asyncio
import os
import secrets
import socket
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import asyncpg

POSTGRES_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
# "postgres" puts every test farm on a fresh PostgreSQL database; unset or "sqlite", on SQLite.
FARM_DATABASE_ENV = "FARM_TEST_DATABASE"
T = TypeVar("T")


def postgres_reachable() -> bool:
    """Whether POSTGRES_URL's server accepts TCP connections."""
    host_port = POSTGRES_URL.split("@", 1)[-1].split("/", 1)[0]
    host, _, port_text = host_port.partition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port_text or 5432)), timeout=1):
            return True
    except OSError:
        return False


async def create_database() -> str:
    """A new, empty database on POSTGRES_URL's server: its postgresql:// URL."""
    name = f"farm_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"


async def drop_database(url: str) -> None:
    """Drops the database `url` names, closing whatever is still connected to it."""
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


class FarmDatabases:
    """The PostgreSQL databases made for this run's test farms, dropped together at its end.

    Made here, not taken from the tests' pool (postgres_pool.py): a farm takes one as it
    starts and keeps it to the run's end, so the pool would save only the few tenths of
    a second a CREATE DATABASE takes, on a farm start of many seconds, and would make
    and drop two databases more (on tests/e2e/test_priority.py: no difference seen).
    """

    def __init__(self) -> None:
        self._urls: list[str] = []

    @staticmethod
    def wanted() -> bool:
        """Whether this run's farms keep their metadata in PostgreSQL (FARM_TEST_DATABASE)."""
        choice = os.environ.get(FARM_DATABASE_ENV, "sqlite").strip().lower()
        if choice not in ("sqlite", "postgres"):
            raise ValueError(f"{FARM_DATABASE_ENV} must be sqlite or postgres, not {choice!r}")
        return choice == "postgres"

    def new(self) -> str | None:
        """A fresh database's URL for one farm, or None (SQLite) when PostgreSQL is not wanted."""
        if not self.wanted():
            return None
        if not postgres_reachable():
            raise RuntimeError(f"{FARM_DATABASE_ENV}=postgres: nothing answers at {POSTGRES_URL}")
        url = _run_apart(create_database())
        self._urls.append(url)
        return url

    def drop_all(self) -> None:
        """Drops every database handed out."""
        while self._urls:
            _run_apart(drop_database(self._urls.pop()))


def _run_apart(work: Coroutine[Any, Any, T]) -> T:
    # Farms are configured from sync fixtures that may run beside the tests' event loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


FARM_DATABASES = FarmDatabases()
