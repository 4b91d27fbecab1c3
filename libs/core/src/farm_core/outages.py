"""Failures that say a part a call needs (the database, NATS) is busy, failing or out of reach.

Under load they are expected, not bugs: a call that meets one answers UNAVAILABLE
with what was wrong, so that its caller knows to try again, rather than INTERNAL.
"""

from typing import TYPE_CHECKING

import nats.errors

if TYPE_CHECKING:
    from sqlalchemy import exc

# SQLite's words for a file it cannot use now, and what each means, first match wins.
# Each ends when something outside the call changes (the other writer finishes, an
# operator frees space, remounts or repairs the disk), so it is an outage, not a bug.
# Only a lock is "busy": a failing or read-only disk said "busy" sent operators to
# look for a long writer that was not there.
_SQLITE_OUTAGES = (
    ("database is locked", "the database is busy"),
    ("database table is locked", "the database is busy"),
    # Its disk, or max_page_count, has no room for the write.
    ("database or disk is full", "the database is full"),
    ("disk i/o error", "the database's disk failed to read or write"),
    ("attempt to write a readonly database", "the database is read-only"),
    ("unable to open database file", "the database file cannot be opened"),
)
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
    if isinstance(error, exc.OperationalError):
        for words, meaning in _SQLITE_OUTAGES:
            if words in said.lower():
                return f"{meaning} ({said})"
    return None
