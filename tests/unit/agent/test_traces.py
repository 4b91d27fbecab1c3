"""The agent's spans for work that comes over NATS: task deliveries and session orders."""

import datetime as dt
from typing import Any

from nats.aio.msg import Msg
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from farm.tasks.v1 import tasks_pb2
from farm_agent.egress.session import EgressSession
from farm_agent.traces import SessionTraces, action_attributes, attempt_span, step_attributes
from farm_core.trace_context import TRACEPARENT, new_traceparent, producing, span_context_of

SUBJECT = "tasks.any.normal"
PUBLISHED = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


def delivery(headers: dict[str, str] | None, delivered: int) -> Msg:
    """A JetStream message as a pull consumer hands it over (metadata in its reply subject)."""
    nanoseconds = int(PUBLISHED.timestamp() * 1_000_000_000)
    reply = f"$JS.ACK.FARM_TASKS.agents-any-normal.{delivered}.7.7.{nanoseconds}.0"
    client: Any = None
    return Msg(client, subject=SUBJECT, reply=reply, data=b"", headers=headers)


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def test_every_delivery_of_a_task_is_an_attempt_under_its_publish(
    recorded_spans: InMemorySpanExporter,
) -> None:
    with producing("task.publish", SUBJECT) as headers:
        pass
    received = PUBLISHED + dt.timedelta(seconds=2)
    for delivered in (1, 2):
        with attempt_span(delivery(headers, delivered), "t1", received):
            pass
    (publish,) = named(recorded_spans, "task.publish")
    attempts = named(recorded_spans, "task.attempt")
    assert [(span.attributes or {})["farm.delivery"] for span in attempts] == [1, 2]
    for attempt in attempts:
        assert attempt.kind is SpanKind.CONSUMER
        assert attempt.parent is not None
        assert attempt.parent.span_id == publish.context.span_id
        assert attempt.context.trace_id == publish.context.trace_id
    # Only the first delivery waited in the queue since the publish.
    (queued,) = named(recorded_spans, "task.queued")
    assert queued.parent is not None
    assert queued.parent.span_id == publish.context.span_id
    assert queued.end_time is not None
    assert queued.start_time is not None
    assert queued.end_time - queued.start_time == 2_000_000_000


def test_a_session_is_one_trace_its_orders_linked_to_their_calls(
    recorded_spans: InMemorySpanExporter,
) -> None:
    traces = SessionTraces()
    open_call = {TRACEPARENT: new_traceparent()}
    command_call = {TRACEPARENT: new_traceparent()}
    egress = EgressSession(label="session s1")
    with traces.opening("s1", Msg(None, subject="sessions.a.open", headers=open_call)):  # type: ignore[arg-type]
        pass
    order = Msg(None, subject="sessions.a.run", headers=command_call)  # type: ignore[arg-type]
    with traces.ordered("session.command", "s1", order, egress) as command:
        assert egress.span is command
        egress.span.add_event("egress.refused", {"farm.egress.target": "10.0.0.1:80"})
    assert not egress.span.is_recording()
    (opened,) = named(recorded_spans, "session.open")
    (ran,) = named(recorded_spans, "session.command")
    assert opened.context.trace_id == span_context_of(open_call[TRACEPARENT]).trace_id
    assert ran.context.trace_id == opened.context.trace_id
    assert ran.parent is not None
    assert ran.parent.span_id == opened.context.span_id
    assert [link.context for link in ran.links] == [span_context_of(command_call[TRACEPARENT])]
    assert [event.name for event in ran.events] == ["egress.refused"]
    assert ran.attributes is not None
    assert ran.attributes["farm.session_id"] == "s1"


def test_a_forgotten_session_no_longer_holds_later_orders(
    recorded_spans: InMemorySpanExporter,
) -> None:
    traces = SessionTraces(capacity=1)
    for session_id in ("s1", "s2"):
        with traces.opening(session_id, Msg(None, subject="open")):  # type: ignore[arg-type]
            pass
    traces.forget("s2")
    for session_id in ("s1", "s2"):
        with traces.ordered("session.close", session_id, Msg(None, subject="close")):  # type: ignore[arg-type]
            pass
    assert [span.parent for span in named(recorded_spans, "session.close")] == [None, None]


def test_a_step_span_names_its_kind_never_its_text() -> None:
    step = tasks_pb2.Step(fill=tasks_pb2.FillStep(selector="#password", value="hunter2"))
    attributes = step_attributes(step, 3)
    assert attributes == {"farm.step.index": 3, "farm.step.kind": "fill"}
    assert action_attributes(tasks_pb2.TaskSpec(pdf=tasks_pb2.PdfOptions())) == {
        "farm.action": "pdf"
    }
