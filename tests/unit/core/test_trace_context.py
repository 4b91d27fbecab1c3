"""The trace context over NATS headers and in a task's stored traceparent."""

import asyncio

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from farm_core.logs import trace_id_var
from farm_core.trace_context import (
    TRACEPARENT,
    consuming,
    end_when_settled,
    new_traceparent,
    outgoing_headers,
    passes_nothing,
    producing,
    span_context_of,
    start_producing,
    trace_id_of,
    traceparent,
)
from farm_core.tracing import tracer

SUBJECT = "tasks.any.normal"
STORED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_published_message_carries_its_publish_span_to_the_consumer(
    recorded_spans: InMemorySpanExporter,
) -> None:
    with producing("task.publish", SUBJECT, attributes={"farm.task_id": "t1"}) as headers:
        sent = dict(headers, **{"Nats-Msg-Id": "t1"})
    with consuming("task.attempt", SUBJECT, sent):
        pass
    attempt, publish = sorted(recorded_spans.get_finished_spans(), key=lambda s: s.name)
    assert publish.kind is SpanKind.PRODUCER
    assert attempt.kind is SpanKind.CONSUMER
    assert attempt.context.trace_id == publish.context.trace_id
    assert attempt.parent is not None
    assert attempt.parent.span_id == publish.context.span_id
    assert attempt.parent.is_remote
    assert publish.attributes == {
        "messaging.system": "nats",
        "messaging.destination.name": SUBJECT,
        "farm.task_id": "t1",
    }
    assert sent[TRACEPARENT] == traceparent(publish.context)


def test_every_publish_of_a_task_joins_its_stored_trace_and_links_the_call_that_made_it(
    recorded_spans: InMemorySpanExporter,
) -> None:
    with (
        tracer().start_as_current_span("AdminService/RequeueDeadLetter") as operator_call,
        producing("task.publish", SUBJECT, parent=STORED) as headers,
    ):
        pass
    publish = next(s for s in recorded_spans.get_finished_spans() if s.name == "task.publish")
    stored = span_context_of(STORED)
    assert publish.context.trace_id == stored.trace_id
    assert publish.parent is not None
    assert publish.parent.span_id == stored.span_id
    assert [link.context for link in publish.links] == [operator_call.get_span_context()]
    assert trace_id_of(headers[TRACEPARENT]) == trace_id_of(STORED)


def test_a_message_without_a_trace_context_starts_a_trace_of_its_own(
    recorded_spans: InMemorySpanExporter,
) -> None:
    with consuming("task.attempt", SUBJECT, None) as span:
        assert span.get_span_context().is_valid
    (attempt,) = recorded_spans.get_finished_spans()
    assert attempt.parent is None


def test_a_later_session_order_is_a_child_of_the_session_linked_to_its_call(
    recorded_spans: InMemorySpanExporter,
) -> None:
    with consuming("session.open", "sessions.agent-1.open", None) as opened:
        session = opened.get_span_context()
    call = {TRACEPARENT: new_traceparent()}
    with consuming("session.command", "sessions.agent-1.run", call, parent=session) as command:
        assert command.get_span_context().trace_id == session.trace_id
    finished = {s.name: s for s in recorded_spans.get_finished_spans()}
    command_span = finished["session.command"]
    assert command_span.parent is not None
    assert command_span.parent.span_id == session.span_id
    assert [link.context.trace_id for link in command_span.links] == [
        span_context_of(call[TRACEPARENT]).trace_id
    ]


def test_log_lines_of_a_consumed_message_carry_its_trace_id(
    recorded_spans: InMemorySpanExporter,
) -> None:
    with consuming("task.attempt", SUBJECT, {TRACEPARENT: STORED}):
        assert trace_id_var.get() == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_var.get() == ""


def test_without_tracing_a_context_that_arrives_still_goes_on() -> None:
    # No SDK: the API's no-op tracer, as in a service without an OTLP endpoint.
    with consuming("task.attempt", SUBJECT, {TRACEPARENT: STORED}) as span:
        assert not span.is_recording()
        assert trace_id_of(outgoing_headers()[TRACEPARENT]) == trace_id_of(STORED)
        assert trace_id_var.get() == trace_id_of(STORED)
    with producing("task.publish", SUBJECT) as headers:
        assert TRACEPARENT not in headers
    with producing("task.publish", SUBJECT, parent=STORED) as headers:
        assert headers == {TRACEPARENT: STORED}


def test_without_tracing_a_publish_still_passes_on_a_stored_or_current_context() -> None:
    # Untraced publishes skip the no-op span, but never a context they have to carry.
    with producing("task.publish", SUBJECT, parent=STORED) as headers:
        assert headers[TRACEPARENT] == STORED
    with (
        consuming("task.event", SUBJECT, {TRACEPARENT: STORED}),
        producing("task.publish", SUBJECT) as headers,
    ):
        assert trace_id_of(headers[TRACEPARENT]) == trace_id_of(STORED)


def test_without_tracing_a_publish_passes_nothing_only_while_no_context_is_current() -> None:
    # What a batch asks once instead of running producing() per message.
    with producing("task.publish", SUBJECT) as headers:
        assert passes_nothing() and headers == {}
    with consuming("task.event", SUBJECT, {TRACEPARENT: STORED}):
        assert not passes_nothing()


def test_a_traceparent_names_its_trace_and_a_malformed_one_names_none() -> None:
    written = new_traceparent()
    assert span_context_of(written).is_valid
    assert trace_id_of(written) == written.split("-")[1]
    assert written != new_traceparent()
    assert written.endswith("-01")
    for malformed in ("", "00-zz-00f067aa0ba902b7-01", "00-" + "0" * 32 + "-00f067aa0ba902b7-01"):
        assert trace_id_of(malformed) == ""
    assert traceparent(trace.INVALID_SPAN_CONTEXT) == ""


async def test_a_started_publish_span_ends_when_its_outcome_settles(
    recorded_spans: InMemorySpanExporter,
) -> None:
    loop = asyncio.get_running_loop()
    outcomes: list[asyncio.Future[object]] = [loop.create_future() for _ in range(3)]
    for index, outcome in enumerate([*outcomes, None]):
        span, headers = start_producing(f"publish-{index}", SUBJECT)
        assert span is not None and headers[TRACEPARENT] == traceparent(span.get_span_context())
        end_when_settled(span, outcome)
    assert [span.name for span in recorded_spans.get_finished_spans()] == ["publish-3"]

    outcomes[0].set_result("stored")
    outcomes[1].set_exception(ConnectionError("gone"))
    outcomes[2].cancel()
    await asyncio.sleep(0)
    statuses = {
        span.name: (span.status.status_code, span.status.description)
        for span in recorded_spans.get_finished_spans()
    }
    assert statuses == {
        "publish-0": (StatusCode.UNSET, None),
        "publish-1": (StatusCode.ERROR, "ConnectionError: gone"),
        "publish-2": (StatusCode.ERROR, "not confirmed in time"),
        "publish-3": (StatusCode.ERROR, "not sent"),
    }
