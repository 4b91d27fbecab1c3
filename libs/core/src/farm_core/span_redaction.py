"""The span exporter that takes URLs' secrets out of spans before they leave the process.

Wraps the OTLP exporter (farm_core.tracing): every span's status text, text
attributes and events' text attributes (an `exception` event's message and stack
trace) go through `redact_urls`, whichever code made the span, the farm's or an
instrumentation package's.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from farm_core.redaction import redact_urls


class RedactingSpanExporter(SpanExporter):
    """Exports through `exporter` the spans with every URL's secrets redacted."""

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._exporter.export([redacted_span(span) for span in spans])

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


def redacted_span(span: ReadableSpan) -> ReadableSpan:
    """`span` itself when no text of it names a URL, else a copy with the URLs redacted."""
    description = span.status.description or ""
    if not (
        "://" in description
        or _names_url(span.attributes)
        or any(_names_url(event.attributes) for event in span.events)
    ):
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_redacted(span.attributes),
        events=[
            Event(event.name, _redacted(event.attributes), event.timestamp) for event in span.events
        ],
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code, redact_urls(description) or None),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _names_url(attributes: Mapping[str, Any] | None) -> bool:
    return any(isinstance(value, str) and "://" in value for value in (attributes or {}).values())


def _redacted(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        key: redact_urls(value) if isinstance(value, str) else value
        for key, value in (attributes or {}).items()
    }
