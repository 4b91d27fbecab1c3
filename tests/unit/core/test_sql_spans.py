"""SQL statement spans name SQLite's database by its file's name (farm_core.sql_spans)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from farm_core import tracing
from farm_core.sql_spans import database_label


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing is on, with spans kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracing", tracing._Tracing(provider, "test"))
    yield exporter
    provider.shutdown()


async def test_a_sqlite_statement_span_carries_no_path(
    traced: InMemorySpanExporter, tmp_path: Path
) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}")
    tracing.trace_engine(engine)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    [span] = [span for span in traced.get_finished_spans() if span.name.startswith("SELECT")]
    assert span.name == "SELECT auth.db"
    attributes = dict(span.attributes or {})
    assert str(tmp_path) not in " ".join(str(value) for value in attributes.values())


@pytest.mark.parametrize(
    ("vendor", "database", "label"),
    [
        ("sqlite", "/srv/farm/data/auth.db", "auth.db"),
        ("sqlite", ":memory:", ":memory:"),
        ("sqlite", None, None),
        ("postgresql", "test", "test"),
    ],
)
def test_only_sqlite_databases_lose_their_directory(
    vendor: str, database: str | None, label: str | None
) -> None:
    assert database_label(vendor, database) == label
