"""When a service traces, and what it leaves out (farm_core.tracing)."""

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from farm_core.interceptors import ServerCall
from farm_core.logs import trace_id_var
from farm_core.trace_context import context_of
from farm_core.trace_export import NoOrphanClients
from farm_core.tracing import (
    CallerTraceInterceptor,
    call_trace_link,
    configure_tracing,
    logged_trace,
    server_interceptors,
    tracer,
    tracing_enabled,
    tracing_wanted,
)

STORED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = int("4bf92f3577b34da6a3ce929d0e0e4736", 16)


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_a_service_traces_only_with_an_otlp_endpoint_and_the_sdk_on(
    environ: dict[str, str], wanted: bool
) -> None:
    assert tracing_wanted(environ) is wanted


def test_without_an_endpoint_nothing_is_installed() -> None:
    assert configure_tracing("scheduler", {}) is False
    assert not tracing_enabled()
    assert server_interceptors() == []
    assert isinstance(call_trace_link(), CallerTraceInterceptor)
    with tracer().start_as_current_span("task.publish") as span:
        assert not span.is_recording()


def test_client_calls_of_background_work_start_no_trace() -> None:
    sampler = NoOrphanClients(sampling.ALWAYS_ON)
    in_a_task = context_of(STORED)

    def decision(kind: SpanKind, parent: object) -> sampling.Decision:
        result = sampler.should_sample(parent, TRACE_ID, "SELECT", kind)  # type: ignore[arg-type]
        return result.decision

    assert decision(SpanKind.CLIENT, None) is sampling.Decision.DROP
    assert decision(SpanKind.CLIENT, in_a_task) is sampling.Decision.RECORD_AND_SAMPLE
    assert decision(SpanKind.SERVER, None) is sampling.Decision.RECORD_AND_SAMPLE
    assert decision(SpanKind.INTERNAL, None) is sampling.Decision.RECORD_AND_SAMPLE


def test_the_configured_sampler_decides_the_rest() -> None:
    sampler = NoOrphanClients(sampling.ALWAYS_OFF)
    result = sampler.should_sample(context_of(STORED), TRACE_ID, "SELECT", SpanKind.CLIENT)
    assert result.decision is sampling.Decision.DROP
    assert "AlwaysOffSampler" in sampler.get_description()


def test_log_lines_in_a_span_carry_its_trace_id(recorded_spans: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("call") as span, logged_trace():
        assert trace_id_var.get() == trace.format_trace_id(span.get_span_context().trace_id)
    assert trace_id_var.get() == ""
    with logged_trace():
        assert trace_id_var.get() == ""


async def test_a_call_continues_only_the_trace_context_it_carries_while_tracing_is_off() -> None:
    around = CallerTraceInterceptor().around("/farm.tasks.v1.TaskService/CreateTask")
    untraced = ServerCall(context=None, metadata=[("x-farm-identity", "token")])
    async with around(untraced):
        assert not trace.get_current_span().get_span_context().is_valid
    traced = ServerCall(context=None, metadata=[("traceparent", STORED)])
    async with around(traced):
        assert trace.get_current_span().get_span_context().trace_id == TRACE_ID
        assert trace_id_var.get() == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert not trace.get_current_span().get_span_context().is_valid
    assert trace_id_var.get() == ""
