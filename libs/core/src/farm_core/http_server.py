"""Serving an ASGI app (the MCP service, the web console) as the gRPC services are served.

Logging set up, metrics on their own port, uvicorn draining for up to
FARM_GRACE_SECONDS on SIGTERM or SIGINT, and with the farm's internal TLS the
clients (Envoy) must show the farm's certificate, as they must to the gRPC services.
"""

import ssl
from collections.abc import Callable
from typing import Any

import uvicorn
from prometheus_client import start_http_server

from farm_core.logs import configure_logging
from farm_core.runtime import run_process
from farm_core.settings import FarmSettings

AppFactory = Callable[[], Callable[..., Any]]
"""Builds the ASGI app (a Starlette app, say)."""


def serve_asgi(
    service_name: str, settings: FarmSettings, port: int, metrics_port: int, app: AppFactory
) -> None:
    """Serves `app()` on `port` until SIGTERM or SIGINT, then drains."""
    configure_logging(service_name, settings.log_level)
    if metrics_port:
        start_http_server(metrics_port, addr=settings.host)
    run_process(_serve(settings, port, app), settings.event_loop)


async def _serve(settings: FarmSettings, port: int, app: AppFactory) -> None:
    # Built on the loop that serves it: an app's gRPC channels belong to their loop.
    tls = settings.internal_tls_cert is not None
    config = uvicorn.Config(
        app(),
        host=settings.host,
        port=port,
        log_level=settings.log_level.lower(),
        # uvicorn's own lines go through the farm's handlers (JSON off a terminal),
        # not through the plain handlers of uvicorn's default logging set-up.
        log_config=None,
        access_log=False,
        # Off: uvicorn's own would take any x-forwarded-for from 127.0.0.1 as the
        # client's address. An app that needs that address says whom it trusts
        # (the console: ProxyHeadersMiddleware with FARM_CONSOLE_TRUSTED_PROXIES).
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.grace_seconds),
        ssl_certfile=str(settings.internal_tls_cert) if tls else None,
        ssl_keyfile=str(settings.internal_tls_key) if tls else None,
        ssl_ca_certs=str(settings.internal_tls_ca) if tls else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if tls else ssl.CERT_NONE,
    )
    await uvicorn.Server(config).serve()
