"""Reading the traces the sink of the package's traced farm keeps, as its spans arrive.

Spans reach the sink in batches, a while after their work: each helper waits (bounded)
until the trace holds what it looks for.
"""

from farm_cli.launcher.farm import LocalFarm
from farm_cli.traces.spans import SpanRecord, read_trace
from tests.helpers import eventually

SPANS_WITHIN = 20.0


class Trace:
    """The spans of one trace the sink kept, looked up by name and parent."""

    def __init__(self, spans: list[SpanRecord]) -> None:
        self.spans = spans

    def named(self, name: str, service: str = "") -> list[SpanRecord]:
        return [
            span
            for span in self.spans
            if span.name == name and (not service or span.service == service)
        ]

    def one(self, name: str, service: str = "") -> SpanRecord:
        found = self.named(name, service)
        assert len(found) == 1, f"{len(found)} spans {name!r} of {service or 'any service'}"
        return found[0]

    def children(self, parent: SpanRecord, name_prefix: str = "") -> list[SpanRecord]:
        return [
            span
            for span in self.spans
            if span.parentSpanId == parent.spanId and span.name.startswith(name_prefix)
        ]


def kept(farm: LocalFarm, trace_id: str, *names: str) -> Trace:
    """The trace once the sink has a span of each of `names` (spans arrive as batches)."""

    def complete() -> Trace | None:
        spans = read_trace(farm.config.traces_folder, trace_id)
        have = {span.name for span in spans}
        return Trace(spans) if set(names) <= have else None

    return eventually(
        complete,
        within=SPANS_WITHIN,
        interval=0.1,
        message=lambda: (
            f"trace {trace_id} lacks some of {names}: has "
            f"{sorted({s.name for s in read_trace(farm.config.traces_folder, trace_id)})}"
        ),
    )


def kept_span(farm: LocalFarm, trace_id: str, span_id: str) -> SpanRecord:
    """One span of a trace, once the sink has it."""

    def found() -> SpanRecord | None:
        spans = read_trace(farm.config.traces_folder, trace_id)
        return next((span for span in spans if span.spanId == span_id), None)

    return eventually(found, within=SPANS_WITHIN, message=f"span {span_id} of {trace_id}")
