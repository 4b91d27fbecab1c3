"""Runs one service: gRPC with health, reflection, interceptors, /metrics, traces, graceful stop."""

import asyncio
import logging
import signal
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import disable_created_metrics, start_http_server

from farm_core.audit import AuditInterceptor
from farm_core.audit_publisher import AuditPublisher
from farm_core.cancel import cancel_and_wait
from farm_core.identity import IdentityVerifier
from farm_core.interceptors import (
    CallChain,
    ErrorMappingInterceptor,
    IdentityInterceptor,
    LogContextInterceptor,
    MetricsInterceptor,
    NulTextInterceptor,
)
from farm_core.logs import configure_logging
from farm_core.nats_loss import on_connection_closed
from farm_core.reflection_pool import reflection_pool
from farm_core.revocation_watch import RevocationWatch
from farm_core.revocations import RevokedCredentials
from farm_core.scopes import accepts_credentials
from farm_core.settings import FarmSettings
from farm_core.tracing import (
    call_trace_link,
    configure_tracing,
    server_interceptors,
    shutdown_tracing,
)
from farm_core.transport import add_port

log = logging.getLogger(__name__)

# Above the largest artifact (64 MiB by default) plus the message around it.
MAX_MESSAGE_BYTES = 80 * 1024 * 1024
# How long a stopping service may spend sending the audit records it still holds.
AUDIT_FLUSH_SECONDS = 5.0
# How long a service whose NATS connection was closed for good drains before it exits.
CLOSED_NATS_GRACE_SECONDS = 5.0


class Service(Protocol):
    """What a service plugs into `serve`: its lifecycle and its gRPC servicers."""

    name: str
    method_scopes: Mapping[str, str]

    async def start(self) -> None:
        """Connects what the service needs (database, NATS, S3) before it serves."""

    def register(self, server: grpc.aio.Server) -> Sequence[str]:
        """Adds the servicers to `server`; returns their full service names."""

    async def drain(self, grace_seconds: float) -> None:
        """Stops taking new work and waits up to `grace_seconds` for work in flight."""

    async def close(self) -> None:
        """Releases what start() opened."""


@runtime_checkable
class KeepsRevocations(Protocol):
    """A service that loads the revoked credentials itself (auth, from its SQL)."""

    revoked_credentials: RevokedCredentials


def _revoked_credentials(service: Service) -> RevokedCredentials | None:
    """The revocations `service`'s calls are checked against; None if it takes no credential."""
    if isinstance(service, KeepsRevocations):
        return service.revoked_credentials
    return RevokedCredentials() if accepts_credentials(service.method_scopes) else None


class ServiceHost:
    """One service's running gRPC server: health, reflection, interceptors, graceful stop.

    `serve` runs it until a signal; tests start and stop it in-process.
    """

    def __init__(
        self,
        service: Service,
        settings: FarmSettings,
        port: int,
        reflected_services: Sequence[str] = (),
    ) -> None:
        self.service = service
        self.settings = settings
        self.port = port
        # Services whose descriptors reflection also answers for, besides those served:
        # the whole public API on the service Envoy routes reflection to.
        self.reflected_services = tuple(reflected_services)
        self._health = health.aio.HealthServicer()
        self._serving_later: asyncio.Task[None] | None = None
        revoked = self._revoked = _revoked_credentials(service)
        # Revocations published by any auth replica reach this process within moments.
        self._revocations = (
            RevocationWatch(settings.nats(), revoked, settings.nats_replicas)
            if revoked is not None
            else None
        )
        codec = IdentityVerifier(settings.resolved_identity_public_key(), revoked)
        self.audit = AuditPublisher(
            settings.nats(), service.name, settings.audit_queue_size, settings.audit_linger_seconds
        )
        self._server = grpc.aio.server(
            interceptors=[
                # Outermost, so that every other interceptor's work is in the call's span.
                *server_interceptors(),
                CallChain(
                    call_trace_link(),
                    MetricsInterceptor(),
                    LogContextInterceptor(),
                    AuditInterceptor(service.name, codec, self.audit),
                    ErrorMappingInterceptor(),
                    IdentityInterceptor(
                        codec, service.method_scopes, settings.bootstrap_tenant_name()
                    ),
                    NulTextInterceptor(),
                ),
            ],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                # gRPC's default SO_REUSEPORT lets a second process bind a port already
                # served and take half its connections; a taken port must fail the start.
                ("grpc.so_reuseport", 0),
            ],
        )

    @property
    def credentials_checkable(self) -> bool:
        """Whether the revoked credentials are loaded (or the service takes no credential)."""
        return self._revoked is None or self._revoked.loaded

    @property
    def address(self) -> str:
        """host:port the server listens on."""
        return f"{self.settings.host}:{self.port}"

    async def start(self) -> None:
        """Starts the service, then serves it; health says SERVING once all is up.

        A start that fails after the service's own (its port taken, say) closes the
        service and the revocation watch again: nothing it opened is left running.
        """
        await self.service.start()
        try:
            await self._serve()
        except BaseException:
            await self._server.stop(0)
            if self._revocations is not None:
                await self._revocations.close()
            await self.service.close()
            raise

    async def _serve(self) -> None:
        if self._revocations is not None:
            self._revocations.start()
        names = list(self.service.register(self._server))
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflected = [*dict.fromkeys([*names, *self.reflected_services]), health.SERVICE_NAME]
        reflection.enable_server_reflection(
            [*reflected, reflection.SERVICE_NAME],
            self._server,
            # Only these services' files: not every proto the process imported.
            pool=reflection_pool([*reflected, reflection.SERVICE_NAME]),
        )
        try:
            bound = add_port(self._server, self.address, self.settings.internal_tls())
        except RuntimeError as error:  # grpcio's "Failed to bind to address"
            raise OSError(f"{self.service.name} cannot listen on {self.address}: {error}") from None
        if bound == 0:
            raise OSError(f"{self.service.name} cannot listen on {self.address}")
        await self._server.start()
        if self._revoked is None or self._revoked.loaded:
            await self._set_serving(names)
        else:
            # Until then every credential is refused as unavailable: health says so, and
            # the launcher and Envoy's health checks wait for it.
            for name in ["", *names]:
                await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
            self._serving_later = asyncio.create_task(
                self._serving_once_loaded(self._revoked, names), name="health-once-loaded"
            )
        mode = "mutual TLS" if self.settings.internal_tls_cert else "plaintext"
        loop = type(asyncio.get_running_loop()).__module__.partition(".")[0]
        log.info("%s serving gRPC (%s, %s loop) on %s", self.service.name, mode, loop, self.address)

    async def _set_serving(self, names: Sequence[str]) -> None:
        for name in ["", *names]:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def _serving_once_loaded(self, revoked: RevokedCredentials, names: Sequence[str]) -> None:
        await revoked.until_loaded()
        await self._set_serving(names)
        log.info("%s loaded the revoked credentials: health says SERVING", self.service.name)

    async def stop(self, grace_seconds: float) -> None:
        """Health NOT_SERVING, drain the service and in-flight RPCs, then close."""
        log.info("%s stopping: draining for up to %.0f s", self.service.name, grace_seconds)
        if self._serving_later is not None:
            await cancel_and_wait(self._serving_later, "the health wait for revocations")
        await self._health.enter_graceful_shutdown()
        await asyncio.gather(self.service.drain(grace_seconds), self._server.stop(grace_seconds))
        await self.audit.close(min(grace_seconds, AUDIT_FLUSH_SECONDS))
        if self._revocations is not None:
            await self._revocations.close()
        await self.service.close()
        log.info("%s stopped", self.service.name)


async def serve(
    service: Service,
    settings: FarmSettings,
    port: int,
    metrics_port: int,
    stop_requested: asyncio.Event | None = None,
    reflected_services: Sequence[str] = (),
) -> None:
    """Serves `service` on `port` until SIGTERM, SIGINT or `stop_requested`, then drains it.

    A service that may ask to be stopped (the agent, on a drain notice) is given
    the event's `set` by whoever calls serve; a request made while the service
    starts is answered once it has started. Reflection answers for the services
    served and for `reflected_services`. A NATS connection the server closed for
    good (`farm_core.nats_loss`) stops the service too, with a short grace (work in
    flight can no longer report), and the process exits non-zero for its
    supervisor to start it again.
    """
    configure_logging(service.name, settings.log_level, settings.log_format)
    configure_tracing(service.name)
    if metrics_port:
        # Each counter and histogram would also serve a `_created` series, which the
        # text format makes a gauge of its own: twice the series, no use.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the library
        start_http_server(metrics_port, addr=settings.host)
        log.info("%s metrics on http://%s:%d/metrics", service.name, settings.host, metrics_port)
    host = ServiceHost(service, settings, port, reflected_services)
    stop = stop_requested or asyncio.Event()
    closed_connections: list[str] = []

    def on_closed(reason: str) -> None:
        closed_connections.append(reason)
        stop.set()

    with on_connection_closed(on_closed):
        await host.start()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for signum in signals:
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
            grace = settings.grace_seconds
            await host.stop(min(grace, CLOSED_NATS_GRACE_SECONDS) if closed_connections else grace)
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
            # The last spans go out in a thread: the exporter's calls block.
            await asyncio.to_thread(shutdown_tracing)
    if closed_connections:
        raise SystemExit(f"{service.name} stopped: {closed_connections[0]}")
