"""The local trace sink: an OTLP/gRPC receiver that writes every span it gets under a folder.

It serves opentelemetry-proto's TraceService (the OTLP/gRPC endpoint any
OpenTelemetry SDK, Envoy or Collector exports to) and gRPC health, on grpc.aio.
`farm up --traces` runs it as `python -m farm_cli.traces` with FARM_HOME/traces;
tests start it in-process on a free port. Files older than `keep_days` are removed
when it starts.
"""

import argparse
import asyncio
import logging
import signal
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from farm_cli.traces.spans import FILE_SUFFIX, append_spans, by_trace, records_of
from farm_core.logs import configure_logging
from farm_core.runtime import run_process
from farm_core.settings import FarmSettings
from farm_core.settings_load import load_settings

log = logging.getLogger(__name__)

DEFAULT_KEEP_DAYS = 7.0
STOP_GRACE_SECONDS = 2.0
# An OTLP exporter sends batches of up to 512 spans; a span with many events is large.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class _Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """TraceService.Export: appends each request's spans to their traces' files."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        # One writer at a time, so that two exports' lines never interleave in a file.
        self._writing = asyncio.Lock()
        self.spans_received = 0

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        grouped = by_trace(records_of(request))
        async with self._writing:
            await asyncio.to_thread(append_spans, self._folder, grouped)
        self.spans_received += sum(len(records) for records in grouped.values())
        return trace_service_pb2.ExportTraceServiceResponse()


def remove_old_traces(folder: Path, keep_days: float, now: float | None = None) -> int:
    """Deletes trace files not written to for `keep_days`; how many went."""
    if not folder.is_dir():
        return 0
    oldest = (time.time() if now is None else now) - keep_days * 86400
    removed = 0
    for path in folder.iterdir():
        if path.name.endswith(FILE_SUFFIX) and path.stat().st_mtime < oldest:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


class TraceSink:
    """The receiver on `listen` (host:port; port 0 picks a free one), writing under `folder`."""

    def __init__(
        self, folder: Path, listen: str = "127.0.0.1:0", keep_days: float = DEFAULT_KEEP_DAYS
    ) -> None:
        self.folder = folder
        self._listen = listen
        self._keep_days = keep_days
        self._receiver = _Receiver(folder)
        self._health = health.aio.HealthServicer()
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                # A taken port must fail the start, not be shared with its holder.
                ("grpc.so_reuseport", 0),
            ]
        )
        self.port = 0

    @property
    def endpoint(self) -> str:
        """The URL exporters are given (OTEL_EXPORTER_OTLP_ENDPOINT)."""
        host = self._listen.rpartition(":")[0]
        return f"http://{host}:{self.port}"

    @property
    def spans_received(self) -> int:
        """How many spans were written since the start."""
        return self._receiver.spans_received

    async def start(self) -> None:
        """Removes old files, then serves; OSError if the address cannot be bound."""
        self.folder.mkdir(parents=True, exist_ok=True)
        removed = await asyncio.to_thread(remove_old_traces, self.folder, self._keep_days)
        if removed:
            log.info("removed %d trace(s) older than %g days", removed, self._keep_days)
        # opentelemetry-proto's gRPC stubs have no type hints.
        add_servicer = trace_service_pb2_grpc.add_TraceServiceServicer_to_server
        add_servicer(self._receiver, self._server)  # type: ignore[no-untyped-call]
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self.port = self._server.add_insecure_port(self._listen)
        if self.port == 0:
            raise OSError(f"the trace sink cannot listen on {self._listen}")
        await self._server.start()
        for name in ("", TRACE_SERVICE):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("trace sink on %s, writing to %s", self.endpoint, self.folder)

    async def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """Lets exports in flight finish, then stops."""
        await self._server.stop(grace_seconds)

    async def __aenter__(self) -> "TraceSink":
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve_sink(folder: Path, listen: str, keep_days: float) -> None:
    """Runs the sink until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with TraceSink(folder, listen, keep_days) as sink:
        await stop.wait()
        log.info("trace sink stopping after %d span(s)", sink.spans_received)


def main(argv: list[str] | None = None) -> None:
    """`python -m farm_cli.traces --listen HOST:PORT --folder DIR`."""
    parser = argparse.ArgumentParser(
        prog="python -m farm_cli.traces", description="The local farm's OTLP/gRPC trace sink."
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:4317", help="host:port (default %(default)s)"
    )
    parser.add_argument("--folder", type=Path, required=True, help="where the trace files go")
    parser.add_argument("--keep-days", type=float, default=DEFAULT_KEEP_DAYS)
    args = parser.parse_args(argv)
    # Read as the services read theirs: a bad value stops it naming the variable.
    settings = load_settings(FarmSettings, "traces")
    configure_logging("traces")
    run_process(serve_sink(args.folder, args.listen, args.keep_days), settings.event_loop)
