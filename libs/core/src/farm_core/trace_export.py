"""The OpenTelemetry SDK's half of tracing, imported only once tracing is on.

farm_core.tracing imports this module in `configure_tracing` when the environment
names an OTLP endpoint: the SDK, its OTLP exporter and psutil (loaded by the SDK's
resource detection) are then needed, and otherwise only cost a start CPU.
"""

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from farm_core.span_redaction import RedactingSpanExporter


class NoOrphanClients(sampling.Sampler):
    """Drops client spans that would start a trace; asks `configured` about the rest.

    A background loop's SQL statements and S3 requests (the republisher, the gauges)
    belong to no task: each would be a trace of one span, every few seconds.
    """

    def __init__(self, configured: sampling.Sampler) -> None:
        self._configured = configured

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> sampling.SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if kind is SpanKind.CLIENT and not parent.is_valid:
            return sampling.SamplingResult(sampling.Decision.DROP)
        return self._configured.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoOrphanClients{{{self._configured.get_description()}}}"


def exporting_provider(name: str) -> TracerProvider:
    """A tracer provider for service `name` that exports its spans over OTLP, redacted."""
    # The sampler OTEL_TRACES_SAMPLER names, as the SDK itself reads it.
    configured = sampling._get_from_env_or_default()
    # Shut down by serve() (shutdown_tracing), not at exit, where the loop is gone.
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: name}),
        sampler=NoOrphanClients(configured),
        shutdown_on_exit=False,
    )
    # A URL's secrets (a task's failure names its URL) do not leave the process.
    provider.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(OTLPSpanExporter())))
    return provider
