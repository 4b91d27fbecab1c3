"""SQL statement spans that name an SQLite database by its file's name, not its path.

OpenTelemetry's SQLAlchemy instrumentation names a span by the statement's first word
and the database name, which for SQLite is the file's path (`SELECT /srv/farm/data/auth.db`):
a machine path in every trace, and span names that differ from one machine to the next.
Here SQLite's database is its file's name (`SELECT auth.db`), in the span's name and its
`db.name`/`db.namespace`; PostgreSQL's database name is kept as the instrumentation gives it.
"""

from pathlib import PurePath
from typing import Any

from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.semconv._incubating.attributes.db_attributes import DB_NAME, DB_NAMESPACE

_SQLITE = "sqlite"


def database_label(vendor: str, database: str | None) -> str | None:
    """What a span calls the database: SQLite's file without its directory, else the name."""
    if vendor == _SQLITE and database:
        return PurePath(database).name
    return database


class FarmEngineTracer(EngineTracer):
    """The instrumentation's engine hooks, with SQLite's database named by its file's name."""

    def _operation_name(self, db_name: str | None, statement: Any) -> str:
        label = database_label(self.vendor, db_name)
        name: str = super()._operation_name(label, statement)  # type: ignore[no-untyped-call]
        return name

    def _set_db_client_span_attributes(
        self, span: Any, statement: Any, db_name: str | None, attrs: dict[str, Any]
    ) -> None:
        named = dict(attrs)
        for key in (DB_NAME, DB_NAMESPACE):
            if isinstance(named.get(key), str):
                named[key] = database_label(self.vendor, named[key])
        super()._set_db_client_span_attributes(span, statement, db_name, named)
