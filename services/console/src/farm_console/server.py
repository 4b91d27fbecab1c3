"""The console's HTTP server: /console/ pages, static files and /healthz, run by uvicorn.

Envoy routes /console/ here without its key check (the sign-in page must open
without a key); every page then calls the farm through the edge with the key the
user signed in with, so the edge's check applies to each call. On SIGTERM,
/healthz turns 503 and uvicorn lets requests in flight finish within the grace period.
"""

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from farm_console.farm import Farm
from farm_console.pages import audit, deadletters, keys, overview, sessions, signin, tasks
from farm_console.refusals import refused_keys
from farm_console.security import SecurityHeaders
from farm_console.settings import ConsoleSettings
from farm_console.views import EXCEPTION_HANDLERS, PREFIX
from farm_core.http_server import serve_asgi

log = logging.getLogger(__name__)

SERVICE_NAME = "console"
STATIC = Path(__file__).parent / "static"


@dataclass
class Health:
    """Whether the console takes requests: false once it has been asked to stop."""

    serving: bool = False


def build_app(settings: ConsoleSettings) -> Starlette:
    """The Starlette application: the pages under /console/, and /healthz."""
    farm = Farm(
        settings.farm_address,
        settings.farm_ca_file,
        settings.call_timeout_seconds,
        settings.credential,
    )
    health = Health()

    async def healthz(request: Request) -> Response:
        status = "SERVING" if health.serving else "NOT_SERVING"
        return JSONResponse({"status": status}, status_code=200 if health.serving else 503)

    async def to_console(request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=308)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        health.serving = True
        log.info("console serving %s/ on %s:%d", PREFIX, settings.host, settings.port)
        try:
            yield
        finally:
            health.serving = False
            await farm.close()

    pages = [
        *signin.routes,
        *overview.routes,
        *tasks.routes,
        *deadletters.routes,
        *sessions.routes,
        *keys.routes,
        *audit.routes,
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route(PREFIX, to_console, methods=["GET"]),
            Mount(PREFIX, routes=pages),
        ],
        middleware=[
            # The browser's address (request.client) from Envoy's x-forwarded-for, only
            # when the peer is a trusted proxy: anyone else could write any address there.
            Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies),
            Middleware(SecurityHeaders),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.farm = farm
    app.state.refused_keys = refused_keys(settings)
    app.state.settings = settings
    return app


def serve(settings: ConsoleSettings) -> None:
    """Serves until SIGTERM or SIGINT, then drains for up to FARM_GRACE_SECONDS."""
    serve_asgi(
        SERVICE_NAME, settings, settings.port, settings.metrics_port, lambda: build_app(settings)
    )
