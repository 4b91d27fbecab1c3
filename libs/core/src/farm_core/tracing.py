"""Traces: the OpenTelemetry SDK set up once per process from the standard OTEL_* variables.

`serve()` calls `configure_tracing` before a service starts. Tracing is on when
OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) names an OTLP/gRPC
receiver, and OTEL_SDK_DISABLED is not true nor OTEL_TRACES_EXPORTER `none`. The SDK
reads the rest itself: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, the sampler
(OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG), the batching (OTEL_BSP_*) and the
exporter's headers, timeout and TLS (OTEL_EXPORTER_OTLP_*).

Off, nothing is installed but the call chain's CallerTraceInterceptor: no exporter, no
SQL hooks; the farm's own spans come from the API's no-op tracer (non-recording, and
a trace context that arrives still passes through, as W3C `traceparent` on gRPC
metadata and NATS headers). The interceptor makes a call's incoming `traceparent`
current, so that what the call records (a task's `traceId`) and passes on names the
caller's trace even though the farm records none of its own.
"""

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import any_of, negate, service_name

from farm_core.call_chain import Around, CallContext, CallInterceptor, ServerCall, SyncContext
from farm_core.logs import trace_id_var

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)

TRACER_NAME = "farm"
"""The instrumentation scope of every span the farm's own code starts."""

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
# Calls that are not work: Envoy's and the launcher's health checks (every 2 s per
# cluster), and grpcurl's reflection.
_UNTRACED_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection")


class Instrumentor(Protocol):
    """An OpenTelemetry instrumentation package's instrumentor (BaseInstrumentor)."""

    is_instrumented_by_opentelemetry: bool

    def instrument(self, **kwargs: Any) -> Any:
        """Patches the library it instruments."""


@dataclass
class _Tracing:
    provider: "TracerProvider"
    service: str


_tracing: _Tracing | None = None


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether `environ` asks for traces: an OTLP endpoint, and the SDK not turned off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in _ENDPOINT_VARIABLES)


def configure_tracing(service: str, environ: Mapping[str, str] | None = None) -> bool:
    """Sets up the SDK for `service` ("scheduler", ...) when asked; whether tracing is on.

    The service is named OTEL_SERVICE_NAME, else `farm-<service>`. Once on, a
    second call changes nothing.
    """
    global _tracing
    env = os.environ if environ is None else environ
    if _tracing is not None:
        return True
    if not tracing_wanted(env):
        return False
    # Imported only when on: the SDK, its exporter (with gRPC stubs of its own) and
    # psutil, which the SDK's resource detection loads, cost every start CPU.
    from farm_core.trace_export import exporting_provider

    name = env.get("OTEL_SERVICE_NAME", "").strip() or f"farm-{service}"
    provider = exporting_provider(name)
    trace.set_tracer_provider(provider)
    _tracing = _Tracing(provider, service)
    endpoint = next(env[variable] for variable in _ENDPOINT_VARIABLES if env.get(variable))
    log.info("%s sends traces to %s as %s", service, endpoint, name)
    return True


def tracing_enabled() -> bool:
    """Whether this process records and exports spans."""
    return _tracing is not None


def shutdown_tracing() -> None:
    """Exports the spans still held (bounded by the exporter's timeout) and stops tracing."""
    global _tracing
    if _tracing is None:
        return
    _tracing.provider.shutdown()
    _tracing = None


def tracer() -> trace.Tracer:
    """The tracer of the farm's own spans (a no-op one while tracing is off)."""
    return trace.get_tracer(TRACER_NAME)


def instrument(instrumentor: Instrumentor) -> None:
    """Installs an instrumentation package's instrumentor, once, when tracing is on."""
    if _tracing is not None and not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=_tracing.provider)


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """The gRPC server's tracing interceptors, outermost first: a span per call when on.

    The span continues the caller's `traceparent`. Off, there are none: the caller's
    trace context is made current by a link of the call chain (`call_trace_link`).
    """
    if _tracing is None:
        return []
    untraced = negate(any_of(*(service_name(name) for name in _UNTRACED_SERVICES)))
    return [
        # The instrumentation package has no type hints.
        aio_server_interceptor(  # type: ignore[no-untyped-call]
            tracer_provider=_tracing.provider, filter_=untraced
        ),
    ]


def call_trace_link() -> CallInterceptor:
    """The call chain's first link: the call's log lines carry its trace id.

    On, the call's span (from `server_interceptors`) names the trace
    (TraceLogInterceptor); off, the caller's `traceparent` does (CallerTraceInterceptor).
    """
    return CallerTraceInterceptor() if _tracing is None else TraceLogInterceptor()


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """A channel's tracing interceptors: a span per call, its context sent as `traceparent`.

    Channels are made before tracing is configured (in services' constructors), so
    these follow the global provider: non-recording until it is set, and while
    tracing is off they send on only a context that arrived from elsewhere.
    """
    interceptors: list[grpc.aio.ClientInterceptor] = aio_client_interceptors()  # type: ignore[no-untyped-call]
    return interceptors


def trace_engine(engine: Any) -> None:
    """Traces the statements of a SQLAlchemy AsyncEngine, when tracing is on."""
    if _tracing is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.metrics import get_meter

    from farm_core.sql_spans import FarmEngineTracer

    # EngineTracer hooks one engine; the instrumentor's own entry point does so for
    # the first engine of a process only. Ours names SQLite's database by its file's name.
    scope = SQLAlchemyInstrumentor.__module__
    FarmEngineTracer(  # type: ignore[no-untyped-call]
        trace.get_tracer(scope, tracer_provider=_tracing.provider),
        engine.sync_engine,
        get_meter(scope).create_up_down_counter("db.client.connections.usage"),
    )


@contextlib.contextmanager
def logged_trace() -> Iterator[None]:
    """Log lines inside carry the current span's trace id (farm_core.logs)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        yield
        return
    token = trace_id_var.set(trace.format_trace_id(context.trace_id))
    try:
        yield
    finally:
        trace_id_var.reset(token)


class TraceLogInterceptor(CallInterceptor):
    """Every log line of a traced call names its trace id; inside the tracing interceptor."""

    def around(self, method: str) -> Around:
        return _logged_call


def _logged_call(call: ServerCall) -> CallContext:
    return SyncContext(logged_trace())


# W3C trace context's header, the one the propagator reads a caller's span from.
_TRACEPARENT = "traceparent"


class CallerTraceInterceptor(CallInterceptor):
    """While tracing is off: the caller's `traceparent` is the current context of its call.

    No span is started; the caller's span context is current (non-recording), so a
    task created by the call keeps the caller's trace id and passes it on. A call
    that carries no `traceparent` is left as it is, at the cost of one look at its headers.
    """

    def around(self, method: str) -> Around:
        return _CallerTrace


class _CallerTrace(CallContext):
    __slots__ = ("_call", "_logged", "_token")

    def __init__(self, call: ServerCall) -> None:
        self._call = call
        self._token: object | None = None

    async def __aenter__(self) -> None:
        metadata = self._call.metadata
        if not any(key == _TRACEPARENT for key, _ in metadata):
            return
        headers = {key: value for key, value in metadata if isinstance(value, str)}
        carried = propagate.extract(headers)
        if not trace.get_current_span(carried).get_span_context().is_valid:
            return
        self._token = otel_context.attach(carried)
        self._logged = logged_trace()
        self._logged.__enter__()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if self._token is not None:
            try:
                self._logged.__exit__(kind, error, traceback)
            finally:
                otel_context.detach(self._token)  # type: ignore[arg-type]
        return False
