"""Runs one service: gRPC with health, reflection and interceptors, /metrics, graceful stop."""

import asyncio
import logging
import signal
from collections.abc import Mapping, Sequence
from typing import Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from farm_core.identity import IdentityCodec
from farm_core.interceptors import ErrorMappingInterceptor, IdentityInterceptor, MetricsInterceptor
from farm_core.logs import configure_logging
from farm_core.settings import FarmSettings

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


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


async def serve(service: Service, settings: FarmSettings, port: int, metrics_port: int) -> None:
    """Serves `service` on `port` until SIGTERM or SIGINT, then drains and stops it."""
    configure_logging(service.name, settings.log_level)
    if metrics_port:
        start_http_server(metrics_port, addr=settings.host)
    codec = IdentityCodec(settings.resolved_identity_secret())
    server = grpc.aio.server(
        interceptors=[
            MetricsInterceptor(),
            ErrorMappingInterceptor(),
            IdentityInterceptor(codec, service.method_scopes),
        ],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    await service.start()
    names = list(service.register(server))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    address = f"{settings.host}:{port}"
    if server.add_insecure_port(address) == 0:
        raise OSError(f"{service.name} cannot listen on {address}")
    await server.start()
    log.info("%s serving gRPC on %s (metrics on %s)", service.name, address, metrics_port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()

    log.info("%s stopping: draining for up to %.0f s", service.name, settings.grace_seconds)
    await health_servicer.enter_graceful_shutdown()
    await asyncio.gather(service.drain(settings.grace_seconds), server.stop(settings.grace_seconds))
    await service.close()
    log.info("%s stopped", service.name)
