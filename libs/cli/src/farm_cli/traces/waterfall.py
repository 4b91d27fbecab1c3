"""A trace drawn in the terminal: each span on a line, nested under its parent, with a time bar.

Columns: when the span started (from the trace's first span), how long it took,
the service, the span's name indented by its depth (with the attributes that say
which attempt, step or artifact it is), and a bar placing it on the trace's time
line. A span whose parent did not reach the sink (the caller's own span, say)
starts a tree of its own.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from farm_cli.traces.spans import SpanEvent, SpanRecord

# Attributes worth showing beside a span's name, in this order.
SHOWN_ATTRIBUTES = (
    "farm.attempt",
    "farm.delivery",
    "farm.outcome",
    "farm.status",
    "farm.step.kind",
    "farm.action",
    "farm.artifact.name",
    "farm.host",
)
# Too long for a line: an exception event's traceback (its type and message show).
HIDDEN_EVENT_ATTRIBUTES = frozenset({"exception.stacktrace", "exception.escaped"})
NAME_WIDTH = 56
MIN_BAR_WIDTH = 10


@dataclass(frozen=True)
class _Row:
    span: SpanRecord
    prefix: str
    event_prefix: str


def duration_text(nanoseconds: int) -> str:
    """A duration people read at a glance: 0.42 ms, 123.4 ms, 1.84 s."""
    milliseconds = nanoseconds / 1_000_000
    if milliseconds < 10:
        return f"{milliseconds:.2f} ms"
    if milliseconds < 1000:
        return f"{milliseconds:.1f} ms"
    return f"{milliseconds / 1000:.2f} s"


def label(span: SpanRecord) -> str:
    """The span's name, with the attributes that tell it from its siblings, and its error."""
    shown = [
        f"{key.removeprefix('farm.')}={span.attributes[key]}"
        for key in SHOWN_ATTRIBUTES
        if key in span.attributes
    ]
    text = span.name + (f" ({', '.join(shown)})" if shown else "")
    if span.status == "ERROR":
        text += f" ERROR{': ' + span.statusMessage if span.statusMessage else ''}"
    return text


def _ordered_rows(spans: Sequence[SpanRecord]) -> list[_Row]:
    """Every span, depth first, children by start time, with its tree-drawing prefix."""
    ids = {span.spanId for span in spans}
    children: dict[str, list[SpanRecord]] = {}
    roots = []
    for span in spans:
        if span.parentSpanId and span.parentSpanId in ids and span.parentSpanId != span.spanId:
            children.setdefault(span.parentSpanId, []).append(span)
        else:
            roots.append(span)
    rows: list[_Row] = []
    seen: set[str] = set()

    def visit(span: SpanRecord, lead: str, branch: str, below: str) -> None:
        if span.spanId in seen:
            return
        seen.add(span.spanId)
        rows.append(_Row(span, lead + branch, lead + below))
        kids = sorted(children.get(span.spanId, []), key=lambda kid: kid.startTimeUnixNano)
        for index, kid in enumerate(kids):
            last = index == len(kids) - 1
            visit(kid, lead + below, "└─ " if last else "├─ ", "   " if last else "│  ")

    for root in sorted(roots, key=lambda span: span.startTimeUnixNano):
        visit(root, "", "", "")
    return rows


def _bar(span: SpanRecord, origin: int, total: int, width: int) -> str:
    start = round((span.startTimeUnixNano - origin) / total * width)
    length = max(1, round(span.duration_ns / total * width))
    start = min(start, width - 1)
    length = min(length, width - start)
    return " " * start + "█" * length + " " * (width - start - length)


def _event_line(event: SpanEvent, origin: int, indent: str) -> str:
    details = ", ".join(
        f"{key.removeprefix('farm.')}={value}"
        for key, value in event.attributes.items()
        if key not in HIDDEN_EVENT_ATTRIBUTES
    )
    offset = duration_text(event.timeUnixNano - origin)
    return f"{offset:>10} {'':>10}  {'':<16} {indent}· {event.name} {details}".rstrip()


def waterfall(spans: Sequence[SpanRecord], width: int = 140, events: bool = False) -> str:
    """The trace of `spans` drawn in about `width` columns; with `events`, each span's events."""
    if not spans:
        return "no spans"
    origin = min(span.startTimeUnixNano for span in spans)
    end = max(span.endTimeUnixNano for span in spans)
    total = max(end - origin, 1)
    services = sorted({span.service for span in spans})
    trace_ids = sorted({span.traceId for span in spans})
    # start, duration, service and name columns, then the bar between two "|".
    bar_width = max(MIN_BAR_WIDTH, width - (10 + 1 + 10 + 2 + 16 + 1 + NAME_WIDTH + 3))
    lines = [
        f"trace {', '.join(trace_ids)}: {len(spans)} spans from {len(services)} services "
        f"({', '.join(services)}) over {duration_text(total)}",
        f"{'start':>10} {'duration':>10}  {'service':<16} {'span':<{NAME_WIDTH}} |time",
    ]
    for row in _ordered_rows(spans):
        span = row.span
        name = (row.prefix + label(span))[:NAME_WIDTH]
        lines.append(
            f"{duration_text(span.startTimeUnixNano - origin):>10} "
            f"{duration_text(span.duration_ns):>10}  {span.service[:16]:<16} "
            f"{name:<{NAME_WIDTH}} |{_bar(span, origin, total, bar_width)}|"
        )
        if events:
            lines.extend(_event_line(event, origin, row.event_prefix) for event in span.events)
    return "\n".join(lines)
