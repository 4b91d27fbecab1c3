"""The W3C trace context over the hops no instrumentation package covers: NATS, and tasks.

NATS messages carry it in their headers (`traceparent`, `tracestate`, as HTTP and
gRPC do): `producing` wraps a publish in a PRODUCER span and gives the headers to
send, `consuming` starts the CONSUMER span of a received message under the context
its headers carry, and `serving` the SERVER span of a request served outside gRPC
(auth's edge check over HTTP). The scheduler keeps a task's `traceparent`, so that every
publish of the task (republished after an outage, requeued from the dead letters)
joins the task's one trace. A client that starts a trace makes its `traceparent`
with `new_traceparent`.
"""

import asyncio
import contextlib
import secrets
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from farm_core.logs import trace_id_var
from farm_core.tracing import logged_trace, tracer

TRACEPARENT = "traceparent"
"""The W3C header (and gRPC metadata key, and NATS header) that carries a trace context."""
MESSAGING_SYSTEM = "messaging.system"
MESSAGING_DESTINATION = "messaging.destination.name"

_w3c = TraceContextTextMapPropagator()


def traceparent(span_context: SpanContext | None = None) -> str:
    """The `traceparent` of `span_context` (else the current span's); "" without a valid one."""
    context = span_context or trace.get_current_span().get_span_context()
    if not context.is_valid:
        return ""
    return (
        f"00-{trace.format_trace_id(context.trace_id)}-"
        f"{trace.format_span_id(context.span_id)}-{int(context.trace_flags):02x}"
    )


def span_context_of(written: str) -> SpanContext:
    """The span context a `traceparent` names; an invalid one for "" or a malformed value."""
    if not written:
        return trace.INVALID_SPAN_CONTEXT
    context = _w3c.extract({TRACEPARENT: written})
    return trace.get_current_span(context).get_span_context()


def trace_id_of(written: str) -> str:
    """The 32 hex digits of the trace a `traceparent` belongs to; "" if it names none."""
    context = span_context_of(written)
    return trace.format_trace_id(context.trace_id) if context.is_valid else ""


def current_trace_id() -> str:
    """The 32 hex digits of the current span's trace; "" when nothing is traced."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else ""


def new_traceparent() -> str:
    """A `traceparent` that starts a new sampled trace (random ids, as W3C asks)."""
    trace_id = span_id = 0
    while not trace_id:
        trace_id = secrets.randbits(128)
    while not span_id:
        span_id = secrets.randbits(64)
    return f"00-{trace.format_trace_id(trace_id)}-{trace.format_span_id(span_id)}-01"


def context_of(written: str) -> Context | None:
    """A context whose parent is the span a `traceparent` names; None for "" (no parent)."""
    return _w3c.extract({TRACEPARENT: written}) if written else None


def outgoing_headers(headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """`headers` plus the current trace context (the globally configured propagators)."""
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def incoming_context(headers: Mapping[str, str] | None) -> Context:
    """The trace context a received message's headers carry (empty without one)."""
    return propagate.extract(dict(headers or {}))


@contextlib.contextmanager
def producing(
    name: str,
    subject: str,
    *,
    parent: str = "",
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[dict[str, str]]:
    """A PRODUCER span around one NATS publish; yields the headers that carry its context.

    Its parent is the span `parent` (a `traceparent`) names, else the current span;
    with both, the current one is linked (an operator's requeue of a user's task).
    While tracing is off no span is made, and the headers carry that parent's context.
    """
    span, headers = start_producing(name, subject, parent=parent, attributes=attributes)
    if span is None:
        yield headers
        return
    with trace.use_span(span, end_on_exit=True):
        yield headers


def start_producing(
    name: str,
    subject: str,
    *,
    parent: str = "",
    attributes: Mapping[str, AttributeValue] | None = None,
) -> tuple[Span | None, dict[str, str]]:
    """The started PRODUCER span of a publish and the headers that carry its context.

    As `producing`, but the caller ends the span: a pipelined publish's when JetStream
    confirms it. The span is None while tracing is off.
    """
    if not _spans_recorded():
        # What the API's no-op tracer would pass on, without its per-publish span and
        # context switch (a sixth of the publishes' work in a profile of single creates).
        if not (parent or trace.get_current_span().get_span_context().is_valid):
            return None, {}  # nothing to pass on (a batch publishes a thousand messages)
        return None, _passed_on(parent)
    context = context_of(parent)
    links = _current_span_link(parent) if context is not None else []
    span_attributes: dict[str, AttributeValue] = {
        MESSAGING_SYSTEM: "nats",
        MESSAGING_DESTINATION: subject,
    }
    span_attributes.update(attributes or {})
    span = tracer().start_span(
        name, context=context, kind=SpanKind.PRODUCER, attributes=span_attributes, links=links
    )
    headers: dict[str, str] = {}
    propagate.inject(headers, context=trace.set_span_in_context(span))
    return span, headers


def end_when_settled(span: Span, outcome: asyncio.Future[Any] | None) -> None:
    """Ends `span` when `outcome` (a publish's acknowledgement) settles; None: never sent.

    A failed, cancelled (not confirmed in time) or missing outcome marks it an error.
    """
    if outcome is None:
        span.set_status(Status(StatusCode.ERROR, "not sent"))
        span.end()
        return

    def end(settled: asyncio.Future[Any]) -> None:
        if settled.cancelled():
            span.set_status(Status(StatusCode.ERROR, "not confirmed in time"))
        elif (error := settled.exception()) is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()

    outcome.add_done_callback(end)


@contextlib.contextmanager
def calling_out(
    name: str, *, parent: str, attributes: Mapping[str, AttributeValue] | None = None
) -> Iterator[tuple[Span, dict[str, str]]]:
    """A CLIENT span of a request the farm sends out of itself (a task's callback).

    Its parent is the span `parent` (a stored `traceparent`) names; it is current
    inside, with the headers that carry its context to the receiver. Log lines
    inside carry the trace id. While tracing is off the span is a no-op one and the
    headers (and log lines) carry `parent`'s context on.
    """
    if not _spans_recorded():
        token = trace_id_var.set(trace_id_of(parent))
        try:
            yield trace.INVALID_SPAN, _passed_on(parent)
        finally:
            trace_id_var.reset(token)
        return
    with (
        tracer().start_as_current_span(
            name, context=context_of(parent), kind=SpanKind.CLIENT, attributes=attributes
        ) as span,
        logged_trace(),
    ):
        yield span, outgoing_headers()


def mark(
    name: str,
    *,
    parent: str,
    attributes: Mapping[str, AttributeValue],
    link_current: bool = False,
) -> None:
    """An INTERNAL span of no length under the span `parent` names.

    For a step that took no work of its own but must show in the trace (a task
    answered from the cache). With `link_current`, it links the current span when
    that is another one (a call that acted on the task later, from another trace:
    its cancel), so the task's trace leads to that call.
    """
    if not _spans_recorded():
        return
    tracer().start_span(
        name,
        context=context_of(parent),
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        links=_current_span_link(parent) if link_current else [],
    ).end()


def _current_span_link(parent: str) -> list[Link]:
    """A link to the current span, if it is another span than `parent`.

    That is a call acting on the task from its own trace (a requeue's operator call,
    a cancel, the call that started a group of creates); a link to the parent says nothing.
    """
    current = trace.get_current_span().get_span_context()
    named = span_context_of(parent)
    if current.is_valid and (current.trace_id, current.span_id) != (
        named.trace_id,
        named.span_id,
    ):
        return [Link(current)]
    return []


def passes_nothing() -> bool:
    """Whether a publish without a parent of its own would carry no trace headers now.

    True while tracing is off and no span is current: a caller publishing many such
    messages at once (a batch) may ask once and skip `producing` for each.
    """
    return not (_spans_recorded() or trace.get_current_span().get_span_context().is_valid)


def _spans_recorded() -> bool:
    """Whether a tracer provider that records spans is set (else the API's no-op one)."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def _passed_on(parent: str) -> dict[str, str]:
    """The headers that carry the span `parent` names (else the current one) on."""
    if not parent:
        return outgoing_headers()
    carrier: dict[str, str] = {}
    span = trace.NonRecordingSpan(span_context_of(parent))
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


@contextlib.contextmanager
def consuming(
    name: str,
    subject: str,
    headers: Mapping[str, str] | None,
    *,
    parent: SpanContext | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[Span]:
    """The CONSUMER span of one received NATS message, current inside; logs carry its trace.

    Its parent is the context the message's headers carry; given a `parent` span
    (a session's), that is the parent instead and the message's context a link.
    """
    carried = incoming_context(headers)
    links: Sequence[Link] = ()
    if parent is not None and parent.is_valid:
        carried_span = trace.get_current_span(carried).get_span_context()
        links = [Link(carried_span)] if carried_span.is_valid else []
        carried = trace.set_span_in_context(trace.NonRecordingSpan(parent))
    span_attributes: dict[str, AttributeValue] = {
        MESSAGING_SYSTEM: "nats",
        MESSAGING_DESTINATION: subject,
    }
    span_attributes.update(attributes or {})
    with (
        tracer().start_as_current_span(
            name, context=carried, kind=SpanKind.CONSUMER, attributes=span_attributes, links=links
        ) as span,
        logged_trace(),
    ):
        yield span


@contextlib.contextmanager
def serving(
    name: str,
    headers: Mapping[str, str],
    *,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[Span]:
    """The SERVER span of one request served outside gRPC, current inside; logs carry its trace.

    Its parent is the context the request's headers carry, read where they are
    (a case-insensitive mapping, such as aiohttp's, is read as one). While tracing
    is off no span is made; log lines inside carry the caller's trace id, if any.
    """
    if not _spans_recorded():
        token = trace_id_var.set(trace_id_of(headers.get(TRACEPARENT) or ""))
        try:
            yield trace.INVALID_SPAN
        finally:
            trace_id_var.reset(token)
        return
    with (
        tracer().start_as_current_span(
            name, context=propagate.extract(headers), kind=SpanKind.SERVER, attributes=attributes
        ) as span,
        logged_trace(),
    ):
        yield span
