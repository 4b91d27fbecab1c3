"""Spans as the local sink keeps them: one JSON object a line, one file per trace.

`<folder>/<trace id>.jsonl` holds every span of one trace that reached the sink, in
the order they arrived, each with the name of the service that sent it. The fields
are OTLP's, as its JSON encoding names them (ids in hex, times in Unix nanoseconds),
with `service` and `kind` and `status` made plain.
"""

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

TRACE_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
FILE_SUFFIX = ".jsonl"


@dataclass(frozen=True)
class SpanEvent:
    """Something that happened at a moment within a span (an egress decision, an exception)."""

    name: str
    timeUnixNano: int  # noqa: N815 - OTLP's JSON field names
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SpanRecord:
    """One finished span of one service."""

    traceId: str  # noqa: N815
    spanId: str  # noqa: N815
    parentSpanId: str  # noqa: N815
    name: str
    service: str
    kind: str
    startTimeUnixNano: int  # noqa: N815
    endTimeUnixNano: int  # noqa: N815
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[SpanEvent] = field(default_factory=list)
    # (traceId, spanId) of each linked span.
    links: list[tuple[str, str]] = field(default_factory=list)
    # "OK", "ERROR" or "UNSET", and the error's message.
    status: str = "UNSET"
    statusMessage: str = ""  # noqa: N815

    @property
    def duration_ns(self) -> int:
        """How long the span lasted."""
        return max(self.endTimeUnixNano - self.startTimeUnixNano, 0)

    def to_json(self) -> str:
        """The span as one line of its trace's file."""
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> "SpanRecord":
        """A span read back from one line of a trace's file."""
        fields = json.loads(line)
        fields["events"] = [SpanEvent(**event) for event in fields.get("events", [])]
        fields["links"] = [tuple(link) for link in fields.get("links", [])]
        return cls(**fields)


def plain_value(value: common_pb2.AnyValue) -> Any:
    """An OTLP attribute value as JSON can hold it (bytes as hex)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [plain_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return plain_attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def plain_attributes(attributes: Iterable[common_pb2.KeyValue]) -> dict[str, Any]:
    """OTLP attributes as a dict."""
    return {attribute.key: plain_value(attribute.value) for attribute in attributes}


def span_record(span: trace_pb2.Span, service: str) -> SpanRecord:
    """The record of one OTLP span sent by `service`."""
    return SpanRecord(
        traceId=span.trace_id.hex(),
        spanId=span.span_id.hex(),
        parentSpanId=span.parent_span_id.hex(),
        name=span.name,
        service=service,
        kind=trace_pb2.Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        startTimeUnixNano=span.start_time_unix_nano,
        endTimeUnixNano=span.end_time_unix_nano,
        attributes=plain_attributes(span.attributes),
        events=[
            SpanEvent(event.name, event.time_unix_nano, plain_attributes(event.attributes))
            for event in span.events
        ],
        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
        status=trace_pb2.Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
        statusMessage=span.status.message,
    )


def records_of(request: trace_service_pb2.ExportTraceServiceRequest) -> Iterator[SpanRecord]:
    """Every span of an OTLP export, with its service's name."""
    for resource_spans in request.resource_spans:
        resource = plain_attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name", "unknown"))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield span_record(span, service)


def by_trace(records: Iterable[SpanRecord]) -> dict[str, list[SpanRecord]]:
    """Records grouped by their trace id."""
    grouped: dict[str, list[SpanRecord]] = {}
    for record in records:
        grouped.setdefault(record.traceId, []).append(record)
    return grouped


def trace_file(folder: Path, trace_id: str) -> Path:
    """The file of one trace; ValueError for an id that is not 32 hex digits."""
    if not TRACE_ID_PATTERN.fullmatch(trace_id):
        raise ValueError(f"a trace id is 32 lowercase hex digits, got {trace_id!r}")
    return folder / f"{trace_id}{FILE_SUFFIX}"


def append_spans(folder: Path, grouped: Mapping[str, list[SpanRecord]]) -> None:
    """Adds each trace's records to the end of its file."""
    folder.mkdir(parents=True, exist_ok=True)
    for trace_id, records in grouped.items():
        with trace_file(folder, trace_id).open("a", encoding="utf-8") as written:
            written.writelines(record.to_json() + "\n" for record in records)


def read_trace(folder: Path, trace_id: str) -> list[SpanRecord]:
    """Every span of one trace the sink kept, in arrival order; [] if it kept none."""
    try:
        text = trace_file(folder, trace_id).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [SpanRecord.from_json(line) for line in text.splitlines() if line.strip()]


def kept_traces(folder: Path) -> list[str]:
    """The ids of every trace kept in `folder`."""
    if not folder.is_dir():
        return []
    return sorted(
        path.name.removesuffix(FILE_SUFFIX)
        for path in folder.iterdir()
        if path.name.endswith(FILE_SUFFIX)
    )


def spans_of_task(spans: list[SpanRecord], task_id: str) -> list[SpanRecord]:
    """The spans of the calls that concern `task_id`, without the other tasks' spans in them.

    A call is a top span (its parent not kept: Envoy's `ingress` under the caller's) with
    everything under it. The CLI sends one trace for all the calls of a command, so the
    trace of a task of `farm task run --from` holds every task of the run; this keeps
    the task's own calls. One call may concern several tasks (a CreateTasks batch): a
    span under (or of) another task's span (its `task.publish`, attempts, reports) is
    left out, the call's shared spans (its SQL) are kept. A trace with no span naming
    the task is kept whole.
    """
    by_id = {span.spanId: span for span in spans}

    def top(span: SpanRecord) -> str:
        seen = {span.spanId}
        while span.parentSpanId in by_id and span.parentSpanId not in seen:
            span = by_id[span.parentSpanId]
            seen.add(span.spanId)
        return span.spanId

    def task_of(span: SpanRecord) -> str | None:
        """The task of the span or of its nearest ancestor that names one."""
        seen: set[str] = set()
        while span.spanId not in seen:
            seen.add(span.spanId)
            named = span.attributes.get("farm.task_id")
            if named is not None:
                return str(named)
            if span.parentSpanId not in by_id:
                return None
            span = by_id[span.parentSpanId]
        return None

    calls = {top(span) for span in spans if span.attributes.get("farm.task_id") == task_id}
    if not calls:
        return spans
    return [span for span in spans if top(span) in calls and task_of(span) in (None, task_id)]
