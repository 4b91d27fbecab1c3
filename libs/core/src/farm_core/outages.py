"""Failures that say a part a call needs (the database, NATS) is busy or out of reach.

Under load they are expected, not bugs: a call that meets one answers UNAVAILABLE
with what was wrong, so that its caller knows to try again, rather than INTERNAL.
"""

from typing import TYPE_CHECKING

import nats.errors

if TYPE_CHECKING:
    from sqlalchemy import exc

# SQLite's words for a file another writer holds too long, or that cannot be read now.
_SQLITE_BUSY = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "unable to open database file",
)
# SQLite's words for a write that found no room: its disk (or max_page_count) is full.
# Space freed by an operator ends it, so it is an outage to wait out, not a bug.
_SQLITE_FULL = "database or disk is full"
# SQLSTATE classes of PostgreSQL: connection exception, insufficient resources (too
# many clients), operator intervention (shutting down, cannot connect now).
_POSTGRES_OUTAGE_CLASSES = frozenset({"08", "53", "57"})


def outage(error: BaseException) -> str | None:
    """What was out of reach, if `error` says a part the call needs is busy or down."""
    if type(error).__module__.startswith("sqlalchemy."):
        # Imported only here: a process without SQL (the agent) must not load SQLAlchemy.
        from sqlalchemy import exc

        if isinstance(error, exc.TimeoutError):
            return "the database is busy: every connection to it is in use"
        if isinstance(error, exc.DBAPIError):
            return _database_outage(error)
    if isinstance(error, nats.errors.TimeoutError):
        return "NATS did not answer in time"
    if isinstance(error, nats.errors.Error):
        return f"NATS is out of reach ({error})"
    return None


def _database_outage(error: "exc.DBAPIError") -> str | None:
    from sqlalchemy import exc

    cause = error.orig
    # The driver's own words, without SQLAlchemy's statement and parameters.
    said = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    if error.connection_invalidated:
        return f"the connection to the database broke ({said})"
    sqlstate = getattr(cause, "sqlstate", None) or getattr(
        getattr(cause, "__cause__", None), "sqlstate", None
    )
    if isinstance(sqlstate, str) and sqlstate[:2] in _POSTGRES_OUTAGE_CLASSES:
        return f"the database is out of reach ({said})"
    if isinstance(error, exc.OperationalError) and _SQLITE_FULL in said.lower():
        return f"the database is full ({said})"
    if isinstance(error, exc.OperationalError) and any(
        words in said.lower() for words in _SQLITE_BUSY
    ):
        return f"the database is busy ({said})"
    return None
